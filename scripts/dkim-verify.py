#!/usr/bin/env python3
"""Verifies the DKIM signatures of the messages a test server stored, with
dkimpy (not our implementation), the public keys handed to it directly.

usage: dkim-verify.py KEYS_DIR CORPUS_DIR

KEYS_DIR holds <selector>.txt files, each the TXT record published at
<selector>._domainkey.example.org. CORPUS_DIR holds the stored messages,
<signer>-<key>-<case>.eml. Every expected message must be there and verify; a
copy of each with one body byte changed must not (the check can fail). Prints
one line per check and "N passed, N failed"; exits non-zero on a failure.
"""

import os
import sys

import dkim

DOMAIN = "example.org"
SIGNERS = ["blocking-data", "blocking-bdat", "tokio", "async-std", "smtp-send"]
KEYS = ["rsa", "ed25519"]
CASES = ["plain", "dot", "bare-lf", "10mib"]


def main():
    keys_dir, corpus = sys.argv[1], sys.argv[2]
    records = {}
    for key in KEYS:
        with open(os.path.join(keys_dir, key + ".txt"), "rb") as f:
            records["%s._domainkey.%s" % (key, DOMAIN)] = f.read().strip()

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        return records.get(name.rstrip(".").lower())

    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        print("%-4s %s" % ("ok" if ok else "FAIL", what))

    expected = ["%s-%s-%s.eml" % (s, k, c) for s in SIGNERS for k in KEYS for c in CASES]
    present = sorted(n for n in os.listdir(corpus) if n.endswith(".eml"))
    for name in expected:
        if name not in present:
            check(False, "%s: missing (its test did not store it)" % name)
    for name in present:
        with open(os.path.join(corpus, name), "rb") as f:
            message = f.read()
        try:
            ok = dkim.verify(message, dnsfunc=dnsfunc)
        except Exception as e:  # dkimpy raises on malformed signatures
            print("     %s: %s" % (name, e))
            ok = False
        check(ok, "%s: %d bytes, signature verifies" % (name, len(message)))
        # The same message with its last body byte before the final CRLF
        # changed must fail.
        end = message.rstrip(b"\r\n")
        if end:
            changed = end[:-1] + (b"X" if end[-1:] != b"X" else b"Y") + message[len(end):]
            try:
                bad = dkim.verify(changed, dnsfunc=dnsfunc)
            except Exception:
                bad = False
            check(not bad, "%s: changed copy is refused" % name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
