// deploy.k8s_policy: the rules of policy.mjs hold for every rendered variant of deploy/k8s, and
// each rule fails when the manifests break it (every check is run on a deliberately broken copy
// of real rendered objects and must report it).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";
import { NGINX_TEMPLATE, skipUnlessReady } from "./support.mjs";

if (!skipUnlessReady(test)) {
  const { loadRendered } = await import("./render.mjs");
  const { CHECKS, expectedFlows, secretReferences } = await import("./policy.mjs");
  const { parseNginxTemplate } = await import("./routing.mjs");
  const env = { nginx: parseNginxTemplate(readFileSync(NGINX_TEMPLATE, "utf8")) };
  const rendered = await loadRendered();
  const variant = (name) => rendered.find((r) => r.variant.name === name);
  const check = (name) => CHECKS.find((c) => c.name === name);

  test("ipInCidr: prefixes of both families, never across them", async () => {
    const { ipInCidr } = await import("./netpol.mjs");
    const cases = [
      ["10.1.2.3", "10.0.0.0/8", true], ["11.0.0.1", "10.0.0.0/8", false],
      ["203.0.113.10", "0.0.0.0/0", true], ["203.0.113.10", "::/0", false],
      ["2001:db8::10", "::/0", true], ["2001:db8::10", "0.0.0.0/0", false],
      ["fd00:ec2::254", "fc00::/7", true], ["2001:db8::10", "fc00::/7", false],
      ["::ffff:10.0.0.1", "::ffff:0:0/96", true], ["::1", "::1/128", true], ["::2", "::1/128", false],
      ["fe80::1", "fe80::/10", true], ["fec0::1", "fe80::/10", false], ["100.127.255.255", "100.64.0.0/10", true],
    ];
    for (const [ip, cidr, inside] of cases) assert.equal(ipInCidr(ip, cidr), inside, `${ip} in ${cidr}`);
  });

  test("the nginx template parses into the locations the checks need", () => {
    assert.ok(env.nginx.locations.length >= 10, JSON.stringify(env.nginx.locations));
    assert.deepEqual(env.nginx.maps.vmp3_jobs_collection, { POST: "vmp3_upload", default: "vmp3_metadata" });
  });

  test("the flow table covers every role and, in Minikube, every backend", () => {
    const count = (name, pattern) => expectedFlows(variant(name).docs).filter((f) => pattern.test(f.text)).length;
    for (const role of ["auth", "upload", "metadata", "download", "converter", "notifier"]) {
      assert.ok(count("production", new RegExp(`^${role} -> `)) >= 5, role);
    }
    for (const backend of ["rabbitmq", "redis", "minio"]) {
      assert.ok(count("minikube", new RegExp(`-> ${backend}:`)) >= 5, backend);
    }
    assert.equal(count("production", /-> minio:/), 0);
  });

  for (const { variant: v, docs } of rendered) {
    test(`${v.name}`, async (t) => {
      for (const c of CHECKS) {
        await t.test(`${c.name}: ${c.what}`, () => assert.deepEqual(c.run(docs, v, env), []));
      }
    });
  }

  test("Minikube generates every Secret and key production expects the operator to create", () => {
    const dehash = (name) => name.replace(/-[a-z0-9]{10}$/, "");
    const generated = new Set(
      variant("minikube").docs
        .filter((d) => d.kind === "Secret")
        .flatMap((s) => Object.keys(s.data).map((k) => `${dehash(s.metadata.name)}/${k}`)),
    );
    for (const name of ["production", "production+keda"]) {
      const expected = secretReferences(variant(name).docs).map((r) => `${r.name}/${r.key}`);
      assert.ok(expected.length > 0);
      assert.deepEqual(expected.filter((k) => !generated.has(k)), [], name);
    }
  });

  // ---- each check fails when the manifests break its rule ------------------------------------

  // Runs `check` on a broken copy of a variant's objects; it must report something matching.
  function assertCaught(checkName, variantName, breakIt, pattern = /./) {
    const { variant: v, docs } = variant(variantName);
    const broken = structuredClone(docs);
    breakIt(broken);
    const problems = check(checkName).run(broken, v, env);
    assert.ok(problems.some((p) => pattern.test(p)), `${checkName} missed it: ${JSON.stringify(problems)}`);
  }
  const find = (docs, kind, name) => {
    const doc = docs.find((d) => d.kind === kind && (!name || d.metadata.name === name || d.metadata.name.startsWith(`${name}-`)));
    assert.ok(doc, `${kind}/${name}`);
    return doc;
  };
  const container = (docs, name) => find(docs, "Deployment", name).spec.template.spec.containers[0];
  const podSpec = (docs, name) => find(docs, "Deployment", name).spec.template.spec;

  const BREAKAGES = {
    probes: [
      ["a readiness probe removed", "production", (d) => delete container(d, "vmp3-auth").readinessProbe, /vmp3-auth .*no readinessProbe/],
      ["a liveness probe removed (infrastructure)", "minikube", (d) => delete find(d, "StatefulSet", "vmp3-redis").spec.template.spec.containers[0].livenessProbe, /vmp3-redis .*no livenessProbe/],
    ],
    resources: [
      ["a memory limit removed", "production", (d) => delete container(d, "vmp3-converter").resources.limits.memory, /no limits\.memory/],
      ["a request above its limit", "base", (d) => (container(d, "vmp3-converter").resources.requests.cpu = "3"), /requests\.cpu 3 > limits 2/],
      ["a Job without requests", "minikube", (d) => delete find(d, "Job", "vmp3-minio-bucket").spec.template.spec.containers[0].resources.requests, /minio-bucket .*no requests\.cpu/],
    ],
    "security-context": [
      ["a writable root filesystem", "production", (d) => (container(d, "vmp3-metadata").securityContext.readOnlyRootFilesystem = false), /readOnlyRootFilesystem/],
      ["root", "base", (d) => (podSpec(d, "vmp3-upload").securityContext.runAsUser = 0), /pod securityContext\.runAsUser/],
      ["the wrong user for the vmp3 image", "base", (d) => (container(d, "vmp3-upload").securityContext.runAsUser = 1000), /runAsUser is 1000, not 10001/],
      ["capabilities kept", "minikube", (d) => (find(d, "StatefulSet", "vmp3-rabbitmq").spec.template.spec.containers[0].securityContext.capabilities = { add: ["NET_ADMIN"] }), /capabilities/],
      ["privilege escalation", "production", (d) => (container(d, "vmp3-auth").securityContext.allowPrivilegeEscalation = true), /allowPrivilegeEscalation/],
      ["no seccomp profile", "production", (d) => delete podSpec(d, "vmp3-download").securityContext.seccompProfile, /pod seccompProfile/],
      ["a service account token", "production", (d) => delete podSpec(d, "vmp3-download").automountServiceAccountToken, /automountServiceAccountToken/],
      ["host networking", "minikube", (d) => (podSpec(d, "vmp3-auth").hostNetwork = true), /hostNetwork/],
    ],
    images: [
      ["production on latest", "production", (d) => (container(d, "vmp3-auth").image = "registry.example.com/vmp3:latest"), /production runs .*:latest/],
      ["production untagged", "production", (d) => (container(d, "vmp3-auth").image = "registry.example.com/vmp3"), /not a pinned version/],
      ["latest pulled every time", "minikube", (d) => (container(d, "vmp3-auth").imagePullPolicy = "Always"), /moving tag pulled with policy Always/],
    ],
    "no-secret-values": [
      ["a Secret with a value in production", "production", (d) => d.push({ apiVersion: "v1", kind: "Secret", metadata: { name: "vmp3-redis" }, stringData: { url: "redis://:x@h:6379/0" } }), /Secret\/vmp3-redis/],
      ["a Secret with a value in base", "base", (d) => d.push({ apiVersion: "v1", kind: "Secret", metadata: { name: "vmp3-s3" }, data: { "access-key-id": "eA==" } }), /Secret\/vmp3-s3/],
    ],
    "no-credentials-in-config": [
      ["a password in the ConfigMap", "production", (d) => (find(d, "ConfigMap", "vmp3-config").data.VMP3_QUEUE = "amqp://vmp3:secret@rabbitmq:5672/%2f"), /VMP3_QUEUE holds a URL with a password/],
      ["the queue URL as a plain value", "production", (d) => {
        const e = container(d, "vmp3-upload").env.find((x) => x.name === "VMP3_QUEUE");
        delete e.valueFrom;
        e.value = "amqp://vmp3:secret@rabbitmq:5672/%2f";
      }, /VMP3_QUEUE not from a Secret/],
    ],
    "secret-references": [
      ["a misspelled key", "minikube", (d) => (container(d, "vmp3-upload").env.find((x) => x.name === "VMP3_QUEUE").valueFrom.secretKeyRef.key = "uri"), /has no key uri/],
      ["KEDA's key missing", "minikube+keda", (d) => (find(d, "TriggerAuthentication").spec.secretTargetRef[0].key = "management-url"), /TriggerAuthentication.*no key management-url/],
      ["a Secret that is not there", "minikube", (d) => (podSpec(d, "vmp3-auth").volumes.find((v) => v.secret).secret.secretName = "vmp3-jwt"), /no Secret vmp3-jwt/],
    ],
    roles: [
      ["a Deployment running another role", "base", (d) => (container(d, "vmp3-download").args = ["serve", "--roles", "metadata"]), /vmp3-download: runs .* labelled download/],
    ],
    drain: [
      ["a grace period shorter than the drain", "production", (d) => (podSpec(d, "vmp3-upload").terminationGracePeriodSeconds = 15), /grace 15s <= preStop 5s \+ drain 15s/],
      ["no preStop pause", "production", (d) => delete container(d, "vmp3-upload").lifecycle, /no preStop pause/],
      ["a longer drain in the ConfigMap", "production", (d) => (find(d, "ConfigMap", "vmp3-config").data.VMP3_DRAIN = "60"), /drain 60s/],
    ],
    volumes: [
      ["a mount without its volume", "base", (d) => podSpec(d, "vmp3-converter").volumes.splice(podSpec(d, "vmp3-converter").volumes.findIndex((v) => v.name === "data"), 1), /mounts unknown volume data/],
      ["an unbounded emptyDir", "base", (d) => delete podSpec(d, "vmp3-converter").volumes.find((v) => v.name === "tmp").emptyDir.sizeLimit, /emptyDir tmp has no sizeLimit/],
    ],
    "disruption-budgets": [
      ["a Deployment without a budget", "production", (d) => d.splice(d.indexOf(find(d, "PodDisruptionBudget", "vmp3-metadata")), 1), /vmp3-metadata: no PodDisruptionBudget/],
      ["a budget selecting nothing", "production", (d) => (find(d, "PodDisruptionBudget", "vmp3-auth").spec.selector.matchLabels["app.kubernetes.io/component"] = "auht"), /PodDisruptionBudget\/vmp3-auth: selects no pods/],
    ],
    autoscaling: [
      ["an HTTP role without an HPA", "production", (d) => d.splice(d.indexOf(find(d, "HorizontalPodAutoscaler", "vmp3-upload")), 1), /vmp3-upload: an HTTP role without/],
      ["KEDA and an HPA on the converters", "production+keda", (d) => d.push(structuredClone(find(variant("production+queue-depth-hpa").docs, "HorizontalPodAutoscaler", "vmp3-converter"))), /vmp3-converter: scaled by/],
      ["replicas set under KEDA", "production+keda", (d) => (find(d, "Deployment", "vmp3-converter").spec.replicas = 4), /sets replicas \(4\)/],
      ["an HPA on a missing Deployment", "production", (d) => (find(d, "HorizontalPodAutoscaler", "vmp3-auth").spec.scaleTargetRef.name = "vmp3-authn"), /targets missing Deployment\/vmp3-authn/],
    ],
    "topology-spread": [
      ["no spread", "production", (d) => delete podSpec(d, "vmp3-metadata").topologySpreadConstraints, /no topologySpreadConstraints/],
      ["a spread over other pods", "production", (d) => (podSpec(d, "vmp3-metadata").topologySpreadConstraints[0].labelSelector.matchLabels["app.kubernetes.io/part-of"] = "other"), /selects other pods/],
    ],
    "ingress-backends": [
      ["a path to a missing Service", "production", (d) => (find(d, "Ingress").spec.rules[0].http.paths[0].backend.service.name = "vmp3-authn"), /no Service vmp3-authn/],
      ["a path to a missing port", "production", (d) => (find(d, "Ingress").spec.rules[0].http.paths[0].backend.service.port = { name: "web" }), /has no port web/],
      ["a Service to a missing container port", "production", (d) => (find(d, "Service", "vmp3-download").spec.ports[0].targetPort = "web"), /vmp3-download has no port web/],
      ["an Exact path under use-regex", "production", (d) => (find(d, "Ingress").spec.rules[0].http.paths[0].pathType = "Exact"), /pathType Exact under use-regex/],
    ],
    routes: [
      ["the webhooks prefix written as an exact path", "production", (d) => (find(d, "Ingress").spec.rules[0].http.paths.find((p) => p.path === "/v1/webhooks").path = "/v1/webhooks$"), /\/v1\/webhooks\/0123abcd: nginx -> notifier, Ingress -> metadata/],
      ["the signing secret left to the catch-all", "base", (d) => {
        const paths = find(d, "Ingress").spec.rules[0].http.paths;
        paths.splice(paths.findIndex((p) => p.path === "/v1/account/signing-secret$"), 1);
      }, /GET \/v1\/account\/signing-secret: nginx -> notifier, Ingress -> metadata/],
      ["the mp3 pattern left open at the end", "production", (d) => (find(d, "Ingress").spec.rules[0].http.paths.find((p) => p.path.endsWith("/mp3$")).path = "/v1/jobs/[^/]+/mp3"), /\/v1\/jobs\/0123abcd\/mp3\/more: nginx -> metadata, Ingress -> download/],
      ["/login removed", "base", (d) => {
        const paths = find(d, "Ingress").spec.rules[0].http.paths;
        paths.splice(paths.findIndex((p) => p.path === "/login$"), 1);
      }, /POST \/login: nginx -> auth, Ingress -> metadata/],
      ["an exact path written as a prefix", "base", (d) => (find(d, "Ingress").spec.rules[0].http.paths.find((p) => p.path === "/$").path = "/"), /nginx -> metadata, Ingress -> upload/],
    ],
    "network-default-deny": [
      ["no default deny", "production", (d) => d.splice(d.indexOf(find(d, "NetworkPolicy", "vmp3-default-deny")), 1), /no default-deny/],
    ],
    "network-flows": [
      ["metadata allowed to RabbitMQ", "production", (d) => find(d, "NetworkPolicy", "vmp3-allow-to-rabbitmq").spec.podSelector.matchExpressions[0].values.push("metadata"), /metadata -> RabbitMQ:5672\/TCP: allowed, should be refused/],
      ["no DNS", "production", (d) => d.splice(d.indexOf(find(d, "NetworkPolicy", "vmp3-allow-dns")), 1), /-> DNS:53\/UDP: refused/],
      ["a selector label leaked into the ingress controller's peer", "production", (d) => (find(d, "NetworkPolicy", "vmp3-allow-from-ingress-controller").spec.ingress[0].from[0].podSelector.matchLabels["app.kubernetes.io/part-of"] = "vmp3"), /ingress controller -> auth:8080\/TCP: refused/],
      ["the notifier's public-only rule gone", "production", (d) => d.splice(d.indexOf(find(d, "NetworkPolicy", "vmp3-notifier-allow-to-internet")), 1), /notifier -> S3 or the internet:443\/TCP: refused, should be allowed/],
      ["the notifier let into private ranges", "production", (d) => (find(d, "NetworkPolicy", "vmp3-notifier-allow-to-internet").spec.egress[0].to[0].ipBlock.except = []), /notifier -> a private address 10\.1\.2\.3:443\/TCP: allowed, should be refused/],
      ["the cloud metadata service over IPv6", "production", (d) => (find(d, "NetworkPolicy", "vmp3-notifier-allow-to-internet").spec.egress[0].to[1].ipBlock.except = ["::1/128"]), /notifier -> the cloud metadata service fd00:ec2::254:443\/TCP: allowed/],
      ["the notifier out on any port", "production", (d) => delete find(d, "NetworkPolicy", "vmp3-notifier-allow-to-internet").spec.egress[0].ports, /notifier -> the internet:8443\/TCP: allowed, should be refused/],
      ["the notifier given S3's rule", "production", (d) => find(d, "NetworkPolicy", "vmp3-allow-to-s3").spec.podSelector.matchExpressions[0].values.push("notifier"), /notifier -> S3 on a private address:443\/TCP: allowed/],
      ["the notifier without the JWKS", "production", (d) => find(d, "NetworkPolicy", "vmp3-allow-to-auth").spec.podSelector.matchExpressions[0].values.pop(), /notifier -> auth:8080\/TCP: refused/],
      // Both ends must open: MinIO's ingress and auth's egress.
      ["auth allowed to MinIO", "minikube", (d) => {
        find(d, "NetworkPolicy", "vmp3-minio-allow").spec.ingress[0].from[0].podSelector.matchExpressions[0].values.push("auth");
        find(d, "NetworkPolicy", "vmp3-allow-to-minio").spec.podSelector.matchExpressions[0].values.push("auth");
      }, /auth -> minio:9000\/TCP: allowed, should be refused/],
    ],
    "auth-url": [
      ["a wrong auth URL", "production", (d) => (find(d, "ConfigMap", "vmp3-config").data.VMP3_AUTH_URL = "http://vmp3-authn:8080"), /no Service vmp3-authn/],
      ["the URL of another role", "production", (d) => (find(d, "ConfigMap", "vmp3-config").data.VMP3_AUTH_URL = "http://vmp3-metadata:8080"), /not the auth role's/],
    ],
  };

  test("every check has breakages that prove it can fail", () => {
    assert.deepEqual(CHECKS.map((c) => c.name).filter((n) => !BREAKAGES[n]), []);
  });

  for (const [checkName, breakages] of Object.entries(BREAKAGES)) {
    test(`${checkName} catches`, async (t) => {
      for (const [what, variantName, breakIt, pattern] of breakages) {
        await t.test(`${what} (${variantName})`, () => assertCaught(checkName, variantName, breakIt, pattern));
      }
    });
  }
}
