// A real OpenID Connect provider for Nestlab's tests (oidc-provider, a certified implementation).
// Usage: node provider.mjs <port> <clients.json> <accounts.json>
// accounts.json is read at every sign-in, so a test can change a person's groups between two.
// Its development interactions (a login form taking any password, then a consent page) stand in
// for a school's sign-in page.
import fs from "node:fs";
import Provider from "oidc-provider";

const [port, clientsFile, accountsFile] = process.argv.slice(2);
const clients = JSON.parse(fs.readFileSync(clientsFile, "utf8"));

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  scopes: ["openid", "profile", "email", "groups"],
  claims: {
    openid: ["sub"],
    profile: ["name", "given_name", "family_name", "preferred_username"],
    email: ["email", "email_verified"],
    groups: ["groups"],
  },
  async findAccount(ctx, id) {
    const accounts = JSON.parse(fs.readFileSync(accountsFile, "utf8"));
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, preferred_username: id, ...account }; } };
  },
  pkce: { required: () => false },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["nestlab-test-only"] },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`ready on ${port}`));
