#!/usr/bin/env python3
"""Checks docs/protocol-vectors.json against an independent ed25519 implementation.

libsodium's crypto_sign_verify_detached (through PyNaCl) must agree with Staffroom's
signature rules on every vector: the accepted entries verify, and those refused for
`bad_signature` or `bad_author_key` do not. Run by .ci/run; needs `pip install pynacl`.
"""
import json
import pathlib
import sys

import nacl
import nacl.bindings
import nacl.exceptions

CONTEXT = b"staffroom/entry/v1\n"
SIGNATURE_BYTES = 64


def verifies(entry: bytes) -> bool:
    author = entry[33:65]
    content, signature = entry[:-SIGNATURE_BYTES], entry[-SIGNATURE_BYTES:]
    try:
        nacl.bindings.crypto_sign_open(signature + CONTEXT + content, author)
        return True
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False


def main() -> int:
    path = pathlib.Path(__file__).resolve().parents[2] / "docs" / "protocol-vectors.json"
    vectors = json.loads(path.read_text())
    failures = []
    checked = 0
    for v in vectors["accepted"]:
        checked += 1
        if not verifies(bytes.fromhex(v["entry_hex"])):
            failures.append(f"accepted vector {v['name']}: libsodium refuses its signature")
    for v in vectors["refused"]:
        entry = bytes.fromhex(v["entry_hex"])
        if v["error"] in ("bad_signature", "bad_author_key"):
            checked += 1
            if verifies(entry):
                failures.append(f"refused vector {v['name']}: libsodium accepts its signature")
    for line in failures:
        print(line)
    agreed = checked - len(failures)
    print(f"libsodium (PyNaCl {nacl.__version__}) agrees on {agreed} of {checked} signature verdicts")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
