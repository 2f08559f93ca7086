// Offline schema validation of rendered manifests, with unknown fields rejected — what the API
// server would refuse (or, worse, silently drop: a misspelled `readinessProbe` is simply not
// there) if we could apply them here.
//
// Two passes per object:
// 1. Types, enums, required fields: the JSON-schema validators generated from the Kubernetes
//    OpenAPI document (npm kubernetes-models) and, for the custom resources, from KEDA's and the
//    Prometheus operator's CRDs (@kubernetes-models/keda, @kubernetes-models/prometheus-operator).
// 2. Unknown fields, which those validators allow: every key of the object is looked up in the
//    type it belongs to. Built-in kinds use @kubernetes/client-node's type maps (each model
//    class's attributeTypeMap: JSON name and type of every field); custom resources use the
//    field lists of the same generated CRD models, read from their TypeScript declarations
//    (client-node has no CRD types).
import { readFileSync } from "node:fs";
import path from "node:path";
import { HERE } from "./support.mjs";

const NODE_MODULES = path.join(HERE, "node_modules");

// apiVersion's group -> the npm package with its generated models.
function modelPackage(apiVersion) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  if (!group.includes(".") || group.endsWith(".k8s.io")) return "kubernetes-models";
  if (group === "keda.sh") return "@kubernetes-models/keda";
  if (group === "monitoring.coreos.com") return "@kubernetes-models/prometheus-operator";
  return null;
}

const isBuiltIn = (apiVersion) => modelPackage(apiVersion) === "kubernetes-models";

// ---- pass 1: kubernetes-models' generated validators ----------------------------------------

const modelModules = new Map();
async function modelClass(apiVersion, kind) {
  const pkg = modelPackage(apiVersion);
  if (!pkg) return null;
  // One kind's module (a whole group's index would compile every validator of the group).
  const spec = `${pkg}/${apiVersion}/${kind}`;
  if (!modelModules.has(spec)) modelModules.set(spec, await import(spec).catch(() => null));
  return modelModules.get(spec)?.[kind] ?? null;
}

// ---- pass 2a: built-in kinds, walking client-node's attributeTypeMap ------------------------

let clientModels = null;
async function clientNodeModels() {
  // The generated models alone (importing the whole client would load its HTTP stack too).
  clientModels ??= await import("@kubernetes/client-node/dist/gen/models/ObjectSerializer.js");
  return clientModels;
}

// "apps/v1" + "Deployment" -> "V1Deployment"; "autoscaling/v2" -> "V2...".
function clientNodeTypeName(apiVersion, kind) {
  const version = apiVersion.split("/").pop();
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

const SCALARS = new Set(["string", "number", "boolean", "Date", "any", "object", "IntOrString"]);

function walkClientNode(models, value, type, where, errors) {
  if (value === null || value === undefined || SCALARS.has(type)) return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (Array.isArray(value)) value.forEach((v, i) => walkClientNode(models, v, m[1], `${where}[${i}]`, errors));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) walkClientNode(models, v, m[1], `${where}.${k}`, errors);
    }
    return;
  }
  const model = models[type];
  if (!model?.getAttributeTypeMap) {
    errors.push(`${where}: no type ${type} in @kubernetes/client-node`);
    return;
  }
  if (typeof value !== "object" || Array.isArray(value)) return; // pass 1 reports wrong types
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [key, v] of Object.entries(value)) {
    if (!fields.has(key)) errors.push(`${where}.${key}: unknown field (not in ${type})`);
    else walkClientNode(models, v, fields.get(key), `${where}.${key}`, errors);
  }
}

// ---- pass 2b: custom resources, walking the generated models' TypeScript declarations -------
//
// The declarations are generated, so their shape is regular: `export interface IName { "field"?:
// TYPE; ... }`, imports of the interfaces they use, and `export type { IName as ILongName }`.
// TYPE is a primitive, a string literal, Array<TYPE>, `{ [key: string]: TYPE; }`, an inline
// `{ "field": TYPE; ... }`, a union, or an imported interface name.

function tokenize(source) {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  return text.match(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|\S/g) ?? [];
}

class TypeParser {
  constructor(tokens, at = 0) {
    this.t = tokens;
    this.i = at;
  }
  peek(k = 0) {
    return this.t[this.i + k];
  }
  next() {
    return this.t[this.i++];
  }
  expect(token) {
    const got = this.next();
    if (got !== token) throw new Error(`expected ${token}, got ${got}`);
  }
  type() {
    const members = [this.postfix()];
    while (this.peek() === "|" || this.peek() === "&") {
      this.next();
      members.push(this.postfix());
    }
    return members.length === 1 ? members[0] : { union: members };
  }
  postfix() {
    let type = this.primary();
    while (this.peek() === "[" && this.peek(1) === "]") {
      this.i += 2;
      type = { array: type };
    }
    return type;
  }
  primary() {
    const token = this.next();
    if (token === "{") return this.objectBody();
    if (token === "(") {
      const inner = this.type();
      this.expect(")");
      return inner;
    }
    if (/^["'\d-]/.test(token)) return { scalar: token };
    if (token === "Array" && this.peek() === "<") {
      this.next();
      const item = this.type();
      this.expect(">");
      return { array: item };
    }
    if (token === "Record" && this.peek() === "<") {
      this.next();
      this.type();
      this.expect(",");
      const value = this.type();
      this.expect(">");
      return { map: value };
    }
    return { ref: token };
  }
  // After "{": properties and/or an index signature, up to the matching "}".
  objectBody() {
    const props = new Map();
    let index = null;
    while (this.peek() !== "}") {
      if (this.peek() === "[") {
        this.next();
        this.next(); // key name
        this.expect(":");
        this.type();
        this.expect("]");
        this.expect(":");
        index = this.type();
      } else {
        let key = this.next();
        if (/^["']/.test(key)) key = JSON.parse(key.replace(/^'|'$/g, '"'));
        if (this.peek() === "?") this.next();
        this.expect(":");
        props.set(key, this.type());
      }
      if (this.peek() === ";" || this.peek() === ",") this.next();
    }
    this.expect("}");
    return { object: props, index };
  }
}

const PRIMITIVES = new Set(["string", "number", "boolean", "any", "unknown", "object", "null", "undefined", "Date", "never"]);

// One parsed declaration file: its interfaces, type aliases and imports.
class Declarations {
  static cache = new Map();

  static load(file) {
    if (!this.cache.has(file)) this.cache.set(file, new Declarations(file));
    return this.cache.get(file);
  }

  constructor(file) {
    this.file = file;
    this.types = new Map(); // local name -> type
    this.imports = new Map(); // local name -> { from, name }
    this.aliases = new Map(); // exported name -> local name
    const tokens = tokenize(readFileSync(file, "utf8"));
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] === "import" && tokens[i + 1] === "{") {
        let j = i + 2;
        const names = [];
        while (tokens[j] !== "}") names.push(tokens[j++]);
        const from = JSON.parse(tokens[j + 2]);
        for (const [name, , local] of splitList(names)) this.imports.set(local ?? name, { from, name });
        i = j;
      } else if (tokens[i] === "export" && tokens[i + 1] === "interface") {
        const name = tokens[i + 2];
        let j = i + 3;
        const bases = [];
        if (tokens[j] === "extends") {
          j++;
          while (tokens[j] !== "{") if (tokens[j++] !== ",") bases.push(tokens[j - 1]);
        }
        const parser = new TypeParser(tokens, j + 1);
        const body = parser.objectBody();
        body.bases = bases;
        this.types.set(name, body);
        i = parser.i - 1;
      } else if (tokens[i] === "export" && tokens[i + 1] === "type" && tokens[i + 2] === "{") {
        let j = i + 3;
        const names = [];
        while (tokens[j] !== "}") names.push(tokens[j++]);
        for (const [name, , exported] of splitList(names)) this.aliases.set(exported ?? name, name);
        i = j;
      } else if (tokens[i] === "export" && tokens[i + 1] === "type" && tokens[i + 3] === "=") {
        const parser = new TypeParser(tokens, i + 4);
        this.types.set(tokens[i + 2], parser.type());
        i = parser.i - 1;
      }
    }
  }

  // The type a name stands for in this file, or null when it cannot be found (base classes
  // like TypeMeta, whose fields the generated interfaces redeclare anyway).
  resolve(name) {
    if (PRIMITIVES.has(name)) return { scalar: name };
    const local = this.aliases.get(name) ?? name;
    if (this.types.has(local)) return { type: this.types.get(local), in: this };
    const imported = this.imports.get(name);
    if (!imported) return null;
    const target = imported.from.startsWith(".")
      ? path.resolve(path.dirname(this.file), imported.from)
      : path.join(NODE_MODULES, imported.from);
    let file = target.replace(/\.js$/, "") + ".d.ts";
    try {
      readFileSync(file);
    } catch {
      return null;
    }
    return Declarations.load(file).resolve(imported.name);
  }
}

// ["A", "as", "B", ",", "C"] -> [["A", "as", "B"], ["C"]]
function splitList(tokens) {
  const out = [[]];
  for (const t of tokens) t === "," ? out.push([]) : out.at(-1).push(t);
  return out.filter((x) => x.length).map((x) => [x[0], x[1], x[2]]);
}

// Unknown-field errors of `value` against `type` (declared in `decl`).
function walkDeclared(value, type, decl, where, errors) {
  if (value === null || value === undefined || type.scalar) return;
  if (type.ref) {
    const resolved = decl.resolve(type.ref);
    if (!resolved) return errors.push(`${where}: cannot resolve type ${type.ref} (${decl.file})`);
    if (resolved.scalar) return;
    return walkDeclared(value, resolved.type, resolved.in, where, errors);
  }
  if (type.array) {
    if (Array.isArray(value)) value.forEach((v, i) => walkDeclared(v, type.array, decl, `${where}[${i}]`, errors));
    return;
  }
  if (type.map) {
    if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) walkDeclared(v, type.map, decl, `${where}.${k}`, errors);
    }
    return;
  }
  if (type.union) {
    // Accepted when one member accepts it (scalar unions accept anything: pass 1 checks them).
    let best = null;
    for (const member of type.union) {
      const own = [];
      walkDeclared(value, member, decl, where, own);
      if (own.length === 0) return;
      if (!best || own.length < best.length) best = own;
    }
    return errors.push(...best);
  }
  if (type.object) {
    if (typeof value !== "object" || Array.isArray(value)) return;
    const fields = new Map(type.object);
    for (const base of type.bases ?? []) {
      const resolved = decl.resolve(base);
      if (resolved?.type?.object) for (const [k, v] of resolved.type.object) fields.set(k, v);
    }
    for (const [key, v] of Object.entries(value)) {
      if (fields.has(key)) walkDeclared(v, fields.get(key), decl, `${where}.${key}`, errors);
      else if (type.index) walkDeclared(v, type.index, decl, `${where}.${key}`, errors);
      else errors.push(`${where}.${key}: unknown field`);
    }
  }
}

function declarationsFor(apiVersion, kind) {
  const file = path.join(NODE_MODULES, modelPackage(apiVersion), apiVersion, `${kind}.d.ts`);
  return Declarations.load(file);
}

// ---- both passes -----------------------------------------------------------------------------

// kubectl kustomize writes long base64 Secret values folded over several lines; the API server
// decodes them ignoring the line breaks (Go's base64 decoder does), so the format check must too.
function asTheApiServerReadsIt(doc) {
  if (doc.kind !== "Secret" || !doc.data) return doc;
  const data = Object.fromEntries(
    Object.entries(doc.data).map(([k, v]) => [k, typeof v === "string" ? v.replace(/[\r\n]/g, "") : v]),
  );
  return { ...doc, data };
}

// The problems of one object (empty when valid), each "Kind/name: path: what".
export async function validate(doc) {
  const label = `${doc?.kind}/${doc?.metadata?.name}`;
  if (!doc || typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") {
    return [`${label}: no apiVersion or kind`];
  }
  const Model = await modelClass(doc.apiVersion, doc.kind);
  if (!Model) return [`${label}: no schema for ${doc.apiVersion} ${doc.kind}`];
  const errors = [];
  try {
    new Model(asTheApiServerReadsIt(doc)).validate();
  } catch (error) {
    errors.push(...(error.errors ?? [{ instancePath: "", message: error.message }]).map(
      (e) => `${e.instancePath || "/"} ${e.message}${e.params?.allowedValues ? " " + JSON.stringify(e.params.allowedValues) : ""}`,
    ));
  }
  const unknown = [];
  if (isBuiltIn(doc.apiVersion)) {
    walkClientNode(await clientNodeModels(), doc, clientNodeTypeName(doc.apiVersion, doc.kind), "", unknown);
  } else {
    const decl = declarationsFor(doc.apiVersion, doc.kind);
    walkDeclared(doc, { ref: `I${doc.kind}` }, decl, "", unknown);
  }
  return [...errors, ...unknown].map((e) => `${label}: ${e}`);
}
