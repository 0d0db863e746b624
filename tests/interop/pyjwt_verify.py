"""Verify a keysmith access token with PyJWT, using only the served JWKS.

Usage: pyjwt_verify.py JWKS_URL TOKEN ISSUER AUDIENCE
Prints the verified claims as JSON; exits 1 with the reason when PyJWT refuses the token.
"""

import json
import sys

import jwt


def main() -> int:
    jwks_url, token, issuer, audience = sys.argv[1:5]
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt" or header.get("alg") != "EdDSA":
        print(f"unexpected header {header}", file=sys.stderr)
        return 1
    signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    try:
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["EdDSA"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
        )
    except jwt.PyJWTError as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"kid": signing_key.key_id, "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
