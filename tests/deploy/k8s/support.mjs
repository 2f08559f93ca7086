// What every test here needs before it can run: kubectl with a kustomize that understands the
// manifests (components, `labels`: kustomize v5, kubectl >= 1.27) and this directory's npm
// packages (scripts/install-deploy-test-deps). Node's standard library only, so that a missing
// prerequisite is reported as a skip (the `deploy tests skipped:` line ctest looks for) rather
// than as an import error.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = path.resolve(HERE, "../../..");
export const K8S_DIR = path.join(SOURCE_DIR, "deploy/k8s");
export const NGINX_TEMPLATE = path.join(SOURCE_DIR, "deploy/nginx/vmp3.conf.template");
export const KUBECTL = process.env.KUBECTL || "kubectl";

const MIN_KUSTOMIZE_MAJOR = 5;

// The kustomize version built into kubectl ("v5.5.0"); "unknown" when kubectl does not say
// (before 1.24 it did not print it); null when there is no kubectl.
export function kustomizeVersion() {
  let out;
  try {
    out = execFileSync(KUBECTL, ["version", "--client", "-o", "json"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch {
    return null;
  }
  try {
    return JSON.parse(out).kustomizeVersion ?? "unknown";
  } catch {
    return "unknown";
  }
}

// Why these tests cannot run here, or null when they can.
export function missingPrerequisite() {
  if (!existsSync(path.join(HERE, "node_modules/yaml"))) {
    return "tests/deploy/k8s/node_modules is missing (run scripts/install-deploy-test-deps)";
  }
  const version = kustomizeVersion();
  if (version === null) return `${KUBECTL} is not on PATH (scripts/install-deps --with-deploy)`;
  if (version === "unknown") {
    return `${KUBECTL} is older than 1.24 (it does not report its kustomize); the manifests need kustomize v${MIN_KUSTOMIZE_MAJOR} (kubectl 1.27 or newer)`;
  }
  const major = Number(/^v?(\d+)/.exec(version)?.[1] ?? 0);
  if (major < MIN_KUSTOMIZE_MAJOR) {
    return `${KUBECTL} embeds kustomize ${version}; the manifests need kustomize v${MIN_KUSTOMIZE_MAJOR} (kubectl 1.27 or newer)`;
  }
  return null;
}

// Registers one skipped test carrying the reason when a prerequisite is missing; returns true
// then, so the caller registers nothing else.
export function skipUnlessReady(test) {
  const reason = missingPrerequisite();
  if (reason === null) return false;
  console.log(`deploy tests skipped: ${reason}`);
  test("deploy/k8s", { skip: reason }, () => {});
  return true;
}
