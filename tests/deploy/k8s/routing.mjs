// Which backend a request reaches: through deploy/nginx/vmp3.conf.template (nginx's location
// rules) and through the Ingress (ingress-nginx's rules), so the policy test can check that both
// gateways send every request to the same role.

// The template's `location ... { proxy_pass http://UPSTREAM; }` lines and its `map`s.
export function parseNginxTemplate(text) {
  const locations = [];
  const pattern = /location\s+(=|~\*|~|\^~)?\s*(\S+)\s*\{\s*proxy_pass\s+http:\/\/([$\w]+);\s*\}/g;
  for (const m of text.matchAll(pattern)) {
    locations.push({ modifier: m[1] ?? "", path: m[2], upstream: m[3] });
  }
  const maps = {};
  for (const m of text.matchAll(/map\s+\$request_method\s+\$(\w+)\s*\{([^}]*)\}/g)) {
    maps[m[1]] = Object.fromEntries(
      m[2].split(";").map((s) => s.trim().split(/\s+/)).filter((p) => p.length === 2),
    );
  }
  return { locations, maps };
}

// nginx's choice: an exact `=` match; else the longest prefix, final if `^~`; else the first
// matching regex in file order; else that longest prefix. Returns the upstream name.
export function nginxUpstream({ locations, maps }, method, path) {
  const chosen = (() => {
    const exact = locations.find((l) => l.modifier === "=" && l.path === path);
    if (exact) return exact;
    const prefixes = locations
      .filter((l) => (l.modifier === "" || l.modifier === "^~") && path.startsWith(l.path))
      .sort((a, b) => b.path.length - a.path.length);
    if (prefixes[0]?.modifier === "^~") return prefixes[0];
    const regex = locations.find(
      (l) => l.modifier.startsWith("~") && new RegExp(l.path, l.modifier === "~*" ? "i" : "").test(path),
    );
    return regex ?? prefixes[0] ?? null;
  })();
  if (!chosen) return null;
  if (chosen.upstream.startsWith("$")) {
    const map = maps[chosen.upstream.slice(1)];
    return map?.[method] ?? map?.default ?? null;
  }
  return chosen.upstream;
}

const isRegexIngress = (ingress) =>
  ingress.metadata?.annotations?.["nginx.ingress.kubernetes.io/use-regex"] === "true";

// ingress-nginx's choice among an Ingress's paths (host ignored). With use-regex, every path of
// the host becomes a case-insensitive regex location `~* "^PATH"`, tried longest path first (its
// controller sorts them so); without, Exact is `= PATH` and Prefix matches whole path elements.
// Returns the backend { service, port } or null (the default backend: 404).
export function ingressBackend(ingress, path) {
  const paths = (ingress.spec.rules ?? []).flatMap((r) => r.http?.paths ?? []);
  if (isRegexIngress(ingress)) {
    const ordered = [...paths]
      .sort((a, b) => (a.path < b.path ? 1 : a.path > b.path ? -1 : 0))
      .sort((a, b) => b.path.length - a.path.length);
    const hit = ordered.find((p) => new RegExp(`^${p.path}`, "i").test(path));
    return hit ? hit.backend.service : null;
  }
  const exact = paths.find((p) => p.pathType === "Exact" && p.path === path);
  if (exact) return exact.backend.service;
  const elements = (p) => p.split("/").filter(Boolean);
  const prefix = paths
    .filter((p) => p.pathType !== "Exact")
    .filter((p) => {
      const want = elements(p.path);
      const have = elements(path);
      return want.every((e, i) => have[i] === e);
    })
    .sort((a, b) => b.path.length - a.path.length)[0];
  return prefix ? prefix.backend.service : null;
}

// Requests worth routing: a few of each location of the template, and the API's own paths.
export function sampleRequests({ locations }) {
  const paths = new Set([
    "/",
    "/v1/jobs",
    "/v1/jobs/",
    "/v1/jobs/0123abcd",
    "/v1/jobs/0123abcd/events",
    "/v1/jobs/0123abcd/mp3",
    "/v1/jobs/0123abcd/mp3/more",
    "/v1/jobs/a/b/mp3",
    "/v1/jobsx",
    "/v1/account",
    "/v1/auth/register",
    "/v1/auth/login",
    "/login",
    "/loginx",
    "/.well-known/jwks.json",
    "/.well-known/jwksxjson",
    "/upload",
    "/uploads",
    "/assets/app.js",
    "/download",
    "/downloads",
    "/docs",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/events",
    "/v1/webhooks",
    "/v1/webhooks/",
    "/v1/webhooks/0123abcd",
    "/v1/webhooks/0123abcd/deliveries",
    "/v1/webhooks/0123abcd/deliveries/4567/redeliver",
    "/v1/webhooksx",
    "/v1/push",
    "/v1/push/vapid-public-key",
    "/v1/push/subscriptions/0123abcd",
    "/v1/pushx",
    "/v1/account/signing-secret",
    "/v1/account/signing-secret/x",
    "/v1/account/signing-secretx",
    "/v1/account/notifications",
    "/v1/account/notificationsx",
  ]);
  for (const l of locations) {
    if (l.modifier === "=") paths.add(l.path);
    if (l.modifier === "" || l.modifier === "^~") {
      paths.add(l.path);
      paths.add(`${l.path}x`);
      paths.add(`${l.path}x/y`);
    }
  }
  return [...paths].flatMap((path) => ["GET", "POST", "DELETE"].map((method) => ({ method, path })));
}

// Where the Ingress deliberately differs from the template: it cannot route by method, so the
// collection /v1/jobs, which nginx splits (POST to upload, the rest to metadata), goes to the
// upload role for every method; the upload role answers GET /v1/jobs (the list) too.
export const INGRESS_DECISIONS = [
  { path: "/v1/jobs", nginx: { POST: "upload", default: "metadata" }, ingress: "upload" },
];
