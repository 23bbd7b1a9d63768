#!/usr/bin/env python3
"""Writes the libFuzzer dictionaries tests/fuzz/dict/TARGET.dict: the DER of
the OIDs each parser looks for (SCEP attributes, CMS content types,
algorithms, CSR attributes and extensions), ASN.1 tokens, and for the text
inputs the query keys or plist keys. Run from anywhere; the outputs are
committed."""

from pathlib import Path

OUT = Path(__file__).resolve().parent / "dict"


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(chunk))
    return b"\x06" + der_len(len(body)) + bytes(body)


def esc(b):
    return "".join(chr(c) if 0x20 <= c < 0x7F and chr(c) not in '"\\' else f"\\x{c:02x}"
                   for c in b)


SCEP_ATTRS = {
    "messageType": "2.16.840.1.113733.1.9.2",
    "pkiStatus": "2.16.840.1.113733.1.9.3",
    "failInfo": "2.16.840.1.113733.1.9.4",
    "senderNonce": "2.16.840.1.113733.1.9.5",
    "recipientNonce": "2.16.840.1.113733.1.9.6",
    "transactionID": "2.16.840.1.113733.1.9.7",
    "failInfoText": "1.3.6.1.5.5.7.24.1",
}
CMS = {
    "data": "1.2.840.113549.1.7.1",
    "signedData": "1.2.840.113549.1.7.2",
    "envelopedData": "1.2.840.113549.1.7.3",
    "contentType": "1.2.840.113549.1.9.3",
    "messageDigest": "1.2.840.113549.1.9.4",
    "signingTime": "1.2.840.113549.1.9.5",
    "smimeCapabilities": "1.2.840.113549.1.9.15",
}
ALGS = {
    "rsaEncryption": "1.2.840.113549.1.1.1",
    "rsaesOaep": "1.2.840.113549.1.1.7",
    "mgf1": "1.2.840.113549.1.1.8",
    "rsassaPss": "1.2.840.113549.1.1.10",
    "sha256WithRSA": "1.2.840.113549.1.1.11",
    "sha1WithRSA": "1.2.840.113549.1.1.5",
    "md5WithRSA": "1.2.840.113549.1.1.4",
    "ecPublicKey": "1.2.840.10045.2.1",
    "prime256v1": "1.2.840.10045.3.1.7",
    "ecdsaWithSHA256": "1.2.840.10045.4.3.2",
    "ed25519": "1.3.101.112",
    "dsa": "1.2.840.10040.4.1",
    "sha1": "1.3.14.3.2.26",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha512": "2.16.840.1.101.3.4.2.3",
    "md5": "1.2.840.113549.2.5",
    "desCBC": "1.3.14.3.2.7",
    "desEde3CBC": "1.2.840.113549.3.7",
    "aes128CBC": "2.16.840.1.101.3.4.1.2",
    "aes256CBC": "2.16.840.1.101.3.4.1.42",
    "aes128GCM": "2.16.840.1.101.3.4.1.6",
    "rc2CBC": "1.2.840.113549.3.2",
}
CSR = {
    "challengePassword": "1.2.840.113549.1.9.7",
    "extensionRequest": "1.2.840.113549.1.9.14",
    "msExtensionRequest": "1.3.6.1.4.1.311.2.1.14",
    "subjectAltName": "2.5.29.17",
    "basicConstraints": "2.5.29.19",
    "keyUsage": "2.5.29.15",
    "extKeyUsage": "2.5.29.37",
    "nameConstraints": "2.5.29.30",
    "subjectKeyIdentifier": "2.5.29.14",
    "authorityKeyIdentifier": "2.5.29.35",
    "commonName": "2.5.4.3",
    "organization": "2.5.4.10",
    "serialNumber": "2.5.4.5",
    "emailAddress": "1.2.840.113549.1.9.1",
    "upn": "1.3.6.1.4.1.311.20.2.3",
}
ASN1 = [
    b"\x30\x80", b"\x00\x00", b"\x31\x80", b"\xa0\x80", b"\x24\x80", b"\x04\x80",
    b"\x30\x82", b"\x30\x84\xff\xff\xff\xff", b"\x02\x01\x00", b"\x02\x01\x01",
    b"\x05\x00", b"\x01\x01\xff", b"\x13\x0219", b"\x13\x0217", b"\x13\x0220",
    b"\x13\x0221", b"\x13\x0222", b"\x13\x013", b"\x13\x010", b"\x13\x012",
    b"\x04\x10", b"\x0c\x00", b"\x16\x00", b"\x1e\x02\x00\x41",
    b"\x17\x0d", b"\x18\x0f", b"\xa0\x00", b"\xa1\x00", b"\x81\x01", b"\x82\x01",
    b"\x86\x01", b"\x87\x04", b"\x88\x03", b"\xa4\x00", b"\xa0\x03\x02\x01\x02",
]


def der_lines(*groups):
    lines = []
    for g in groups:
        for name, dotted in g.items():
            lines.append(f'{name}="{esc(oid(dotted))}"')
    for i, tok in enumerate(ASN1):
        lines.append(f'asn1_{i}="{esc(tok)}"')
    return lines


def text_lines(words):
    return [f'w{i}="{esc(w.encode())}"' for i, w in enumerate(words)]


PEM = ["-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
       "-----BEGIN PRIVATE KEY-----\n", "-----END PRIVATE KEY-----\n",
       "-----BEGIN RSA PRIVATE KEY-----\n", "-----BEGIN EC PRIVATE KEY-----\n",
       "-----BEGIN PKCS7-----\n", "-----BEGIN X509 CRL-----\n",
       "-----BEGIN CERTIFICATE REQUEST-----\n", "-----BEGIN TRUSTED CERTIFICATE-----\n",
       "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "Proc-Type: 4,ENCRYPTED\n",
       "DEK-Info: AES-128-CBC,", "MII", "MIAGCSqGSIb3DQEHAqCA", "\n"]
QUERY = ["operation=", "message=", "PKIOperation", "GetCACaps", "GetCACert",
         "GetNextCACert", "&", "=", "%2B", "%2F", "%3D", "%0A", "%0D%0A", "%00",
         "%", "+", "-", "_", "MIAGCSqGSIb3DQEHAqCA", "MIIJ", "MIAG", "==", "\n"]
PAGE = ["format=", "subject=", "san=", "html", "json", "text", "&", "=", "+",
        "%2F", "%3D", "%2C", "%2B", "%00", "%0A", "%E2%98%83", "%", "/CN=",
        "/O=", "CN=", ",O=", "\\,", "dns:", "email:", "uri:", "ip:", "DNS:",
        "IP:", "*.", "@", "https://", "::1", "10.0.0.1", "application/json",
        ";q=0", ";q=0.5", ", ", "text/html"]
PLIST = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
         "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
         "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">",
         "<plist version=\"1.0\">", "</plist>", "<dict>", "</dict>", "<dict/>",
         "<array>", "</array>", "<array/>", "<key>", "</key>", "<string>",
         "</string>", "<data>", "</data>", "<integer>", "</integer>", "<real>",
         "<date>", "<true/>", "<false/>", "<!--", "-->", "<![CDATA[", "]]>",
         "&amp;", "&#x41;", "&lt;", "UDID", "CHALLENGE", "VERSION", "PRODUCT",
         "SERIAL", "IMEI", "MEID", "DEVICE_NAME", "00008101-001938611EE9001E",
         "fuzz-phase1-challenge", "bplist00", "\x00\x00\x00\x00\x00\x00\x00\x08"]


def main():
    OUT.mkdir(exist_ok=True)
    der = der_lines(SCEP_ATTRS, CMS, ALGS, CSR)
    files = {
        "pkiop_post": der,
        "decode": der + text_lines(PEM),
        "csr": der_lines(CSR, ALGS),
        "cert": der_lines(CSR, ALGS, CMS) + text_lines(PEM),
        "pkiop_get": text_lines(QUERY),
        "challenge_query": text_lines(PAGE),
        "ota": der_lines(CMS, ALGS) + text_lines(PLIST),
    }
    for name, lines in files.items():
        (OUT / f"{name}.dict").write_text(
            f"# libFuzzer dictionary for fuzz_{name} (written by gen_dicts.py)\n"
            + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
