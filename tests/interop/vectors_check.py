"""Check keysmith's published vectors (tests/vectors/) with PyJWT, an independent JOSE library.

Usage: vectors_check.py VECTORS_DIR

- The golden tokens (access_token.json, api_key.json, revocations.json) verify with the JWKS of
  their file alone and decode to exactly the stored header and claims.
- Every negative-corpus case marked "jose_reject" (a refusal at the signature level: alg none,
  HS256, a forged, truncated or malleated signature, an unknown key, a broken shape) is refused,
  and the corpus' reference token ("valid") is accepted, so the refusals are not a setup error.

Time claims are not checked here (the vectors use a fixed clock); the Rust suite checks them.
Prints a JSON summary; exits 1 listing every disagreement.
"""

import json
import pathlib
import sys

import jwt

NO_TIME = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False}


def verify(token: str, jwks: dict) -> dict:
    """Verify `token` against `jwks` with EdDSA pinned; raise on any refusal."""
    header = jwt.get_unverified_header(token)
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
    if not keys:
        raise jwt.InvalidKeyError(f"no key with kid {header.get('kid')!r}")
    key = jwt.PyJWK(keys[0])
    return jwt.decode(token, key.key, algorithms=["EdDSA"], options=NO_TIME)


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    failures: list[str] = []

    for name in ("access_token.json", "api_key.json", "revocations.json"):
        vector = json.loads((root / name).read_text())
        token = vector["token"]
        try:
            claims = verify(token, vector["jwks"])
        except jwt.PyJWTError as e:
            failures.append(f"{name}: golden token refused: {type(e).__name__}: {e}")
            continue
        if claims != vector["claims"]:
            failures.append(f"{name}: claims differ: {claims} != {vector['claims']}")
        expected_header = vector.get("header")
        if expected_header is not None and jwt.get_unverified_header(token) != expected_header:
            failures.append(f"{name}: header differs")

    corpus = json.loads((root / "negative.json").read_text())
    checked = 0
    for case in corpus["cases"]:
        if case["name"] == "valid":
            try:
                verify(case["token"], corpus["jwks"])
            except jwt.PyJWTError as e:
                failures.append(f"negative.json valid: refused: {type(e).__name__}: {e}")
            continue
        if not case["jose_reject"]:
            continue
        checked += 1
        try:
            verify(case["token"], corpus["jwks"])
        except (jwt.PyJWTError, ValueError):
            continue
        failures.append(f"negative.json {case['name']}: accepted, must be refused")

    print(json.dumps({"golden": 3, "rejected": checked, "failures": failures}))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
