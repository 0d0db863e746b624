// Verifies a keysmith access token with node `jose` against a JWKS file, allowing only ALG.
// Usage: node jose_alg.mjs JWKS_FILE TOKEN ALG ISSUER AUDIENCE
// Prints the header's alg; exits 1 (with jose's error code) when the token is refused.
import { createLocalJWKSet, jwtVerify } from "jose";
import { readFileSync } from "node:fs";

const [jwksFile, token, alg, issuer, audience] = process.argv.slice(2);
const keys = createLocalJWKSet(JSON.parse(readFileSync(jwksFile, "utf8")));
try {
  const { protectedHeader } = await jwtVerify(token, keys, { algorithms: [alg], issuer, audience, typ: "at+jwt" });
  console.log(protectedHeader.alg);
} catch (e) {
  console.error(e.code ?? e.message);
  process.exit(1);
}
