// deploy.k8s_schema: every object of every rendered variant validates offline against the
// Kubernetes schemas (and KEDA's and the Prometheus operator's for their custom resources), with
// unknown fields rejected (schema.mjs says how). The last tests show that each kind of mistake
// is caught.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import test from "node:test";
import { K8S_DIR, skipUnlessReady } from "./support.mjs";

if (!skipUnlessReady(test)) {
  const { loadRendered, parseDocuments } = await import("./render.mjs");
  const { validate } = await import("./schema.mjs");
  const YAML = (await import("yaml")).default;
  const rendered = await loadRendered();

  for (const { variant, docs } of rendered) {
    test(`${variant.name}: every object matches its schema`, async () => {
      const problems = [];
      for (const doc of docs) problems.push(...(await validate(doc)));
      assert.deepEqual(problems, []);
    });
  }

  test("the prometheus-adapter rule is a valid ConfigMap holding an external rule", async () => {
    const file = path.join(K8S_DIR, "components/queue-depth-hpa/prometheus-adapter-rule.yaml");
    const [configMap] = parseDocuments(readFileSync(file, "utf8"), file);
    assert.deepEqual(await validate(configMap), []);
    const config = YAML.parse(configMap.data["config.yaml"]);
    assert.deepEqual(Object.keys(config), ["externalRules"]);
    const [rule] = config.externalRules;
    assert.equal(rule.name.as, "vmp3_queue_depth");
    assert.match(rule.seriesQuery, /^vmp3_queue_depth\{/);
    assert.equal(rule.resources.overrides.namespace.resource, "namespace");
    // The metric the HPA asks for is the one the rule serves.
    const hpa = rendered
      .find((r) => r.variant.name === "production+queue-depth-hpa")
      .docs.find((d) => d.kind === "HorizontalPodAutoscaler" && d.metadata.name === "vmp3-converter");
    assert.equal(hpa.spec.metrics[0].external.metric.name, rule.name.as);
  });

  // Each kind of mistake, made on a copy of a real object, must be reported.
  const production = (name) => rendered.find((r) => r.variant.name === name).docs;
  const copyOf = (docs, kind, name) =>
    structuredClone(docs.find((d) => d.kind === kind && (!name || d.metadata.name === name)));
  const rejects = async (doc, pattern) => {
    const problems = await validate(doc);
    assert.ok(problems.some((p) => pattern.test(p)), `expected ${pattern}, got ${JSON.stringify(problems)}`);
  };

  test("caught: a misspelled field of a built-in kind", async () => {
    const deployment = copyOf(production("production"), "Deployment", "vmp3-auth");
    const container = deployment.spec.template.spec.containers[0];
    container.readinesProbe = container.readinessProbe;
    delete container.readinessProbe;
    await rejects(deployment, /containers\[0\]\.readinesProbe: unknown field/);
  });

  test("caught: a field in the wrong place", async () => {
    const ingress = copyOf(production("production"), "Ingress");
    ingress.spec.rules[0].http.paths[0].backend.service.port.targetPort = 8080;
    await rejects(ingress, /port\.targetPort: unknown field/);
  });

  test("caught: a wrong type and a missing required field", async () => {
    const deployment = copyOf(production("production"), "Deployment", "vmp3-converter");
    deployment.spec.replicas = "four";
    delete deployment.spec.template.spec.containers[0].name;
    await rejects(deployment, /\/spec\/replicas must be integer/);
    await rejects(deployment, /containers\/0 must have required property '?name'?/);
  });

  test("caught: a bad enum value", async () => {
    // Only the enums the OpenAPI document declares (pathType is one; many others are checked by
    // the API server's own validation, which no offline check has).
    const ingress = copyOf(production("production"), "Ingress");
    ingress.spec.rules[0].http.paths[0].pathType = "Regex";
    await rejects(ingress, /pathType must be equal to one of the allowed values/);
  });

  test("caught: an unknown field in a KEDA ScaledObject and TriggerAuthentication", async () => {
    const scaled = copyOf(production("production+keda"), "ScaledObject");
    scaled.spec.triggers[0].authRef = scaled.spec.triggers[0].authenticationRef;
    await rejects(scaled, /triggers\[0\]\.authRef: unknown field/);
    const behavior = copyOf(production("production+keda"), "ScaledObject");
    behavior.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.window = 60;
    await rejects(behavior, /scaleDown\.window: unknown field/);
    const auth = copyOf(production("production+keda"), "TriggerAuthentication");
    auth.spec.secretTargetRef[0].secret = "vmp3-rabbitmq";
    await rejects(auth, /secretTargetRef\[0\]\.secret: unknown field/);
    const missing = copyOf(production("production+keda"), "ScaledObject");
    delete missing.spec.scaleTargetRef;
    await rejects(missing, /must have required property '?scaleTargetRef'?/);
  });

  test("caught: an unknown field in a PodMonitor", async () => {
    const monitor = copyOf(production("production+prometheus-operator"), "PodMonitor");
    monitor.spec.podMetricsEndpoints[0].paths = ["/metrics"];
    await rejects(monitor, /podMetricsEndpoints\[0\]\.paths: unknown field/);
  });

  test("caught: a kind nobody defines", async () => {
    await rejects({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: { name: "x" } }, /no schema/);
    await rejects({ apiVersion: "example.com/v1", kind: "Thing", metadata: { name: "x" } }, /no schema/);
  });
}
