// deploy.k8s_render: every variant of deploy/k8s renders with `kubectl kustomize` (base, the
// overlays, production with each optional component, Minikube with KEDA) into the objects it
// promises, and the Minikube overlay's generate-secrets behaves as docs/deploy.md says. Saves the
// renders for the schema and policy tests when $VMP3_K8S_RENDERED is set.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import test from "node:test";
import { K8S_DIR, SOURCE_DIR, kustomizeVersion, skipUnlessReady } from "./support.mjs";

if (!skipUnlessReady(test)) {
  const { Workspace, id, saveRendered, variantsToRender } = await import("./render.mjs");

  // Kinds that live outside namespaces.
  const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);
  // The roles are the directories of base/roles; those with a Service serve HTTP.
  const rolesDir = path.join(K8S_DIR, "base/roles");
  const ROLES = readdirSync(rolesDir);
  const HTTP_ROLES = ROLES.filter((r) => existsSync(path.join(rolesDir, r, "service.yaml")));

  const names = (docs, kind) =>
    docs.filter((d) => d.kind === kind).map((d) => d.metadata.name).sort();

  test(`every variant renders (kustomize ${kustomizeVersion()})`, async (t) => {
    const workspace = new Workspace();
    t.after(() => workspace.close());
    workspace.generateSecrets();
    const rendered = await workspace.renderAll();
    if (process.env.VMP3_K8S_RENDERED) saveRendered(process.env.VMP3_K8S_RENDERED, rendered);
    const byName = Object.fromEntries(rendered.map((r) => [r.variant.name, r.docs]));
    assert.deepEqual(Object.keys(byName), variantsToRender().map((v) => v.name));

    for (const { variant, docs } of rendered) {
      await t.test(`${variant.name}: no object twice`, () => {
        const ids = docs.map(id);
        assert.deepEqual(ids.filter((x, i) => ids.indexOf(x) !== i), []);
      });
      await t.test(`${variant.name}: a Deployment per role, a Service per HTTP role`, () => {
        assert.ok(ROLES.includes("auth") && ROLES.includes("converter"), ROLES.join());
        assert.deepEqual(names(docs, "Deployment"), ROLES.map((r) => `vmp3-${r}`).sort());
        for (const role of HTTP_ROLES) assert.ok(names(docs, "Service").includes(`vmp3-${role}`));
        assert.deepEqual(names(docs, "Ingress"), ["vmp3"]);
        assert.equal(docs.filter((d) => d.kind === "ConfigMap" && d.metadata.name.startsWith("vmp3-config")).length, 1);
      });
      if (variant.overlay !== "base") {
        await t.test(`${variant.name}: everything in namespace vmp3`, () => {
          for (const doc of docs) {
            if (CLUSTER_SCOPED.has(doc.kind)) continue;
            assert.equal(doc.metadata.namespace, "vmp3", id(doc));
          }
          assert.deepEqual(names(docs, "Namespace"), ["vmp3"]);
        });
      }
    }

    // What each overlay and component adds.
    assert.deepEqual(names(byName.base, "Secret"), []);
    assert.deepEqual(names(byName.production, "Secret"), []);
    assert.deepEqual(
      names(byName.minikube, "Secret").map((n) => n.replace(/-[a-z0-9]{10}$/, "")),
      ["vmp3-jwt-key", "vmp3-rabbitmq", "vmp3-redis", "vmp3-s3", "vmp3-vapid-key"],
    );
    assert.deepEqual(names(byName.minikube, "StatefulSet"), ["vmp3-minio", "vmp3-rabbitmq", "vmp3-redis"]);
    assert.deepEqual(names(byName.minikube, "Job"), ["vmp3-minio-bucket"]);
    assert.deepEqual(names(byName["production+keda"], "ScaledObject"), ["vmp3-converter"]);
    assert.deepEqual(names(byName["production+keda"], "TriggerAuthentication"), ["vmp3-rabbitmq"]);
    assert.ok(names(byName["production+queue-depth-hpa"], "HorizontalPodAutoscaler").includes("vmp3-converter"));
    assert.deepEqual(names(byName["production+prometheus-operator"], "PodMonitor"), ["vmp3"]);
    const production = byName.production.find((d) => d.kind === "Ingress");
    assert.equal(production.spec.rules[0].host, "vmp3.example.com");
    assert.equal(production.spec.tls[0].secretName, "vmp3-tls");
  });

  test("a broken kustomization fails to render", async (t) => {
    const workspace = new Workspace();
    t.after(() => workspace.close());
    const file = path.join(workspace.k8s, "base/kustomization.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("\n  - ingress.yaml", "\n  - no-such-file.yaml"));
    await assert.rejects(workspace.render({ name: "base", overlay: "base", components: [] }), /no-such-file/);
  });

  test("generate-secrets writes private, URL-safe secrets once and keeps them", (t) => {
    const workspace = new Workspace();
    t.after(() => workspace.close());
    const first = workspace.generateSecrets();
    const files = ["rabbitmq.env", "redis.env", "s3.env", "jwt-ed25519.key", "vapid-p256.pem"];
    for (const f of files) assert.match(first, new RegExp(`wrote .*/${f.replace(".", "\\.")}`));
    assert.equal(statSync(workspace.secretsDir).mode & 0o777, 0o700);
    const contents = {};
    for (const f of files) {
      const file = path.join(workspace.secretsDir, f);
      assert.equal(statSync(file).mode & 0o777, 0o600, f);
      contents[f] = readFileSync(file, "utf8");
    }
    // The signing key vmp3 reads: base64 of a 32-byte Ed25519 seed, then a newline.
    assert.match(contents["jwt-ed25519.key"], /^[A-Za-z0-9+/]{43}=\n$/);
    assert.equal(Buffer.from(contents["jwt-ed25519.key"].trim(), "base64").length, 32);
    // The notifier's VAPID key: an unencrypted P-256 private key, PEM.
    const vapid = createPrivateKey(contents["vapid-p256.pem"]);
    assert.equal(vapid.asymmetricKeyType, "ec");
    assert.equal(vapid.asymmetricKeyDetails.namedCurve, "prime256v1");
    const env = (text) => Object.fromEntries(text.trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2)));
    const rabbitmq = env(contents["rabbitmq.env"]);
    assert.match(rabbitmq.password, /^[0-9a-f]{32}$/);
    assert.equal(rabbitmq.url, `amqp://vmp3:${rabbitmq.password}@vmp3-rabbitmq:5672/%2f`);
    assert.equal(rabbitmq["keda-management-url"], `http://vmp3:${rabbitmq.password}@vmp3-rabbitmq:15672/%2F`);
    const redis = env(contents["redis.env"]);
    assert.equal(redis.url, `redis://:${redis.password}@vmp3-redis:6379/0`);
    const s3 = env(contents["s3.env"]);
    assert.match(s3["secret-access-key"], /^[0-9a-f]{32}$/);

    const second = workspace.generateSecrets();
    for (const f of files) {
      assert.match(second, new RegExp(`keeping .*/${f.replace(".", "\\.")}`));
      assert.equal(readFileSync(path.join(workspace.secretsDir, f), "utf8"), contents[f], f);
    }
  });

  test("git ignores the generated secrets", (t) => {
    let inGit = true;
    try {
      execFileSync("git", ["-C", SOURCE_DIR, "rev-parse", "--is-inside-work-tree"], { stdio: "ignore" });
    } catch {
      inGit = false;
    }
    if (!inGit) return t.skip("not a git work tree");
    const file = path.relative(SOURCE_DIR, path.join(K8S_DIR, "overlays/minikube/secrets/redis.env"));
    // check-ignore exits 0 when the path is ignored.
    execFileSync("git", ["-C", SOURCE_DIR, "check-ignore", "-q", "--no-index", file]);
  });
}
