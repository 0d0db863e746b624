// A resource server protected by express-oauth2-jwt-bearer configured with only `issuerBaseURL`
// and `audience`: it finds the JWKS through keysmith's RFC 8414 metadata.
// Usage: node express_discovery.mjs ISSUER_BASE_URL AUDIENCE TOKEN...
// Prints one HTTP status per token, as a JSON array.
import express from "express";
import { auth } from "express-oauth2-jwt-bearer";

const [issuerBaseURL, audience, ...tokens] = process.argv.slice(2);
const app = express();
app.use(auth({ issuerBaseURL, audience }));
app.get("/files", (req, res) => res.json({ sub: req.auth.payload.sub ?? null }));
const server = app.listen(0, "127.0.0.1", async () => {
  const { port } = server.address();
  const statuses = [];
  for (const token of tokens) {
    const response = await fetch(`http://127.0.0.1:${port}/files`, { headers: { authorization: `Bearer ${token}` } });
    statuses.push(response.status);
  }
  console.log(JSON.stringify(statuses));
  server.close();
});
