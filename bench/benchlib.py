"""What the Python benchmarks share."""
import os
import re
import subprocess


def rsa2048_signs(seconds=2):
    """RSA-2048 signatures/s of `openssl speed` on every core at once: the
    crypto bound the benchmarks set their rates against."""
    n = os.cpu_count() or 1
    out = subprocess.run(["openssl", "speed", "-multi", str(n), "-seconds",
                          str(seconds), "rsa2048"], capture_output=True,
                         text=True, timeout=120).stdout
    m = re.search(r"^rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out, re.M)
    if not m:
        raise SystemExit(f"bench: cannot read openssl speed's output:\n{out}")
    return float(m.group(1))
