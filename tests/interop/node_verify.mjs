// Verify a keysmith access token with Node's built-in crypto (no npm packages), using only
// the JWKS document. Usage: node node_verify.mjs JWKS_FILE TOKEN
// Prints the payload as JSON; exits 1 when the signature or header is refused.
import { createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const [jwksFile, token] = process.argv.slice(2);
const jwks = JSON.parse(readFileSync(jwksFile, "utf8"));
const [h, p, s] = token.split(".");
const header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
if (header.alg !== "EdDSA" || header.typ !== "at+jwt") {
  console.error(`unexpected header ${JSON.stringify(header)}`);
  process.exit(1);
}
const jwk = jwks.keys.find((k) => k.kid === header.kid);
if (!jwk) {
  console.error(`unknown kid ${header.kid}`);
  process.exit(1);
}
const key = createPublicKey({ key: jwk, format: "jwk" });
const ok = verify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url"));
if (!ok) {
  console.error("bad signature");
  process.exit(1);
}
console.log(Buffer.from(p, "base64url").toString("utf8"));
