// Renders deploy/k8s the way an operator does (`kubectl kustomize DIR`), for every overlay alone
// and with each optional component added, in a scratch copy of deploy/k8s: the Minikube overlay's
// secrets are generated there by its own generate-secrets script (never in the source tree),
// and a component is enabled by adding it to a copy of the overlay's kustomization.yaml, as the
// docs tell an operator to.
import { execFile, execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import YAML from "yaml";
import { K8S_DIR, KUBECTL } from "./support.mjs";

const run = promisify(execFile);

export const OVERLAYS = ["minikube", "production"];
export const COMPONENTS = ["keda", "queue-depth-hpa", "prometheus-operator"];

// Every variant the tests render: base, each overlay, production with each component, and
// Minikube with KEDA (its TriggerAuthentication must follow the generated Secret's name).
export function variantsToRender() {
  return [
    { name: "base", overlay: "base", components: [] },
    ...OVERLAYS.map((overlay) => ({ name: overlay, overlay, components: [] })),
    ...COMPONENTS.map((c) => ({ name: `production+${c}`, overlay: "production", components: [c] })),
    { name: "minikube+keda", overlay: "minikube", components: ["keda"] },
  ];
}

// A scratch copy of deploy/k8s. close() removes it.
export class Workspace {
  constructor() {
    this.root = mkdtempSync(path.join(os.tmpdir(), "vmp3-k8s-"));
    this.k8s = path.join(this.root, "k8s");
    const ownSecrets = path.join(K8S_DIR, "overlays/minikube/secrets");
    cpSync(K8S_DIR, this.k8s, {
      recursive: true,
      filter: (source) => source !== ownSecrets && !source.startsWith(ownSecrets + path.sep),
    });
  }

  // Runs the Minikube overlay's generate-secrets in the copy; returns its output.
  generateSecrets() {
    return execFileSync("bash", [path.join(this.k8s, "overlays/minikube/generate-secrets")], {
      encoding: "utf8",
    });
  }

  get secretsDir() {
    return path.join(this.k8s, "overlays/minikube/secrets");
  }

  // The directory to render for a variant: the overlay itself, or a sibling copy of it whose
  // kustomization lists the components.
  dirFor(variant) {
    if (variant.overlay === "base") return path.join(this.k8s, "base");
    const overlayDir = path.join(this.k8s, "overlays", variant.overlay);
    if (variant.components.length === 0) return overlayDir;
    const dir = path.join(this.k8s, "overlays", [variant.overlay, ...variant.components].join("--"));
    cpSync(overlayDir, dir, { recursive: true });
    const file = path.join(dir, "kustomization.yaml");
    const kustomization = YAML.parseDocument(readFileSync(file, "utf8"));
    const listed = kustomization.get("components")?.toJSON() ?? [];
    kustomization.set(
      "components",
      [...listed, ...variant.components.map((c) => `../../components/${c}`)],
    );
    writeFileSync(file, kustomization.toString());
    return dir;
  }

  // `kubectl kustomize` of the variant, parsed: { variant, text, docs }.
  async render(variant) {
    const dir = this.dirFor(variant);
    let stdout;
    try {
      ({ stdout } = await run(KUBECTL, ["kustomize", dir], { maxBuffer: 64 << 20 }));
    } catch (error) {
      throw new Error(`kubectl kustomize ${variant.name} failed:\n${error.stderr || error.message}`);
    }
    return { variant, text: stdout, docs: parseDocuments(stdout, variant.name) };
  }

  async renderAll(variants = variantsToRender()) {
    return Promise.all(variants.map((v) => this.render(v)));
  }

  close() {
    rmSync(this.root, { recursive: true, force: true });
  }
}

// Every YAML document of a multi-document text, as plain objects; a syntax error throws.
export function parseDocuments(text, where) {
  const docs = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value !== null) docs.push(value);
  }
  return docs;
}

// A workspace with the secrets generated and every variant rendered, for tests that only read
// the output.
export async function renderEverything(variants = variantsToRender()) {
  const workspace = new Workspace();
  try {
    workspace.generateSecrets();
    return await workspace.renderAll(variants);
  } finally {
    workspace.close();
  }
}

// The render test saves what it rendered into $VMP3_K8S_RENDERED (a ctest fixture), so the
// schema and policy tests read it instead of running kubectl nine more times each; run alone
// (no such directory), they render for themselves.
const MANIFEST = "variants.json";

// Each variant as rendered (YAML, for people) and parsed (JSON: YAML parsing costs the readers
// a second per variant).
export function saveRendered(dir, rendered) {
  mkdirSync(dir, { recursive: true });
  for (const r of rendered) {
    writeFileSync(path.join(dir, `${r.variant.name}.yaml`), r.text);
    writeFileSync(path.join(dir, `${r.variant.name}.json`), JSON.stringify(r.docs));
  }
  writeFileSync(path.join(dir, MANIFEST), JSON.stringify(rendered.map((r) => r.variant)));
}

export async function loadRendered() {
  const dir = process.env.VMP3_K8S_RENDERED;
  const wanted = variantsToRender();
  if (dir && existsSync(path.join(dir, MANIFEST))) {
    const saved = JSON.parse(readFileSync(path.join(dir, MANIFEST), "utf8"));
    if (JSON.stringify(saved) === JSON.stringify(wanted)) {
      return saved.map((variant) => ({
        variant,
        text: readFileSync(path.join(dir, `${variant.name}.yaml`), "utf8"),
        docs: JSON.parse(readFileSync(path.join(dir, `${variant.name}.json`), "utf8")),
      }));
    }
  }
  return renderEverything(wanted);
}

export const id = (doc) =>
  `${doc.kind}/${doc.metadata?.namespace ? doc.metadata.namespace + "/" : ""}${doc.metadata?.name}`;
