/* Unit tests of the core library (Check). */

#include <stdlib.h>

#include <apr_general.h>

#include "testutil.h"

int main(void)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    sr = srunner_create(suite_caps());
    srunner_add_suite(sr, suite_query());
    srunner_add_suite(sr, suite_challenge());
    srunner_add_suite(sr, suite_log());
    srunner_add_suite(sr, suite_store());
    srunner_add_suite(sr, suite_crypt());
    srunner_add_suite(sr, suite_ca());
    srunner_add_suite(sr, suite_issue());
    srunner_add_suite(sr, suite_crl());
    srunner_add_suite(sr, suite_audit());
    srunner_add_suite(sr, suite_policy());
    srunner_add_suite(sr, suite_pkimsg());
    srunner_add_suite(sr, suite_pkiop());
    srunner_add_suite(sr, suite_ota());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
