// The rules every rendered variant of deploy/k8s must keep. Each check takes one variant's
// objects and returns its violations ("Kind/name: what is wrong"); policy.test.mjs runs them all
// on every variant and shows, by breaking a copy of the objects, that each one can fail.
import { connectionAllowed, deniedByDefault, selects } from "./netpol.mjs";
import { INGRESS_DECISIONS, ingressBackend, nginxUpstream, sampleRequests } from "./routing.mjs";

// ---- reading the objects ----------------------------------------------------------------------

const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job"]);
const LONG_RUNNING = new Set(["Deployment", "StatefulSet", "DaemonSet"]);
export const VMP3_USER = 10001;

const label = (doc) => `${doc.kind}/${doc.metadata.name}`;
const namespaceOf = (doc) => doc.metadata.namespace ?? "default";
const ofKind = (docs, kind) => docs.filter((d) => d.kind === kind);

export function workloads(docs) {
  return docs
    .filter((d) => WORKLOAD_KINDS.has(d.kind))
    .map((doc) => {
      const template = doc.spec.template;
      return {
        doc,
        name: label(doc),
        namespace: namespaceOf(doc),
        pod: template.spec,
        labels: template.metadata?.labels ?? {},
        containers: [...(template.spec.initContainers ?? []), ...template.spec.containers],
      };
    });
}

const isVmp3 = (w) => w.labels["app.kubernetes.io/name"] === "vmp3";
const roleOf = (w) => w.labels["app.kubernetes.io/component"];
const containerLabel = (w, c) => `${w.name} container ${c.name}`;

// A network endpoint for a workload's pods: what netpol.mjs needs.
const endpointOf = (w) => ({
  namespace: w.namespace,
  labels: w.labels,
  ports: w.containers.flatMap((c) => (c.ports ?? []).map((p) => ({ ...p, protocol: p.protocol ?? "TCP" }))),
});

function vmp3Config(docs) {
  const map = docs.find((d) => d.kind === "ConfigMap" && /^vmp3-config(-[a-z0-9]+)?$/.test(d.metadata.name));
  return map?.data ?? {};
}

// A container's value of a variable: its own env first, then the ConfigMaps it loads.
function envValue(docs, container, name) {
  const own = (container.env ?? []).find((e) => e.name === name);
  if (own) return own.value;
  for (const from of container.envFrom ?? []) {
    const map = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === from.configMapRef?.name);
    if (map?.data?.[name] !== undefined) return map.data[name];
  }
  return undefined;
}

// "500m" -> 0.5, "1Gi" -> 1073741824.
export function quantity(q) {
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(q));
  if (!m) return NaN;
  const scale = { "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[m[2]];
  return scale === undefined ? NaN : Number(m[1]) * scale;
}

function servicePods(docs, service) {
  return workloads(docs).filter(
    (w) => w.namespace === namespaceOf(service) && service.spec.selector && selects({ matchLabels: service.spec.selector }, w.labels),
  );
}

// The Deployments the Ingress sends traffic to: the HTTP roles.
function httpDeployments(docs) {
  const names = new Set();
  for (const ingress of ofKind(docs, "Ingress")) {
    for (const path of (ingress.spec.rules ?? []).flatMap((r) => r.http?.paths ?? [])) {
      const service = docs.find((d) => d.kind === "Service" && d.metadata.name === path.backend.service?.name);
      if (!service) continue;
      for (const w of servicePods(docs, service)) if (w.doc.kind === "Deployment") names.add(w.doc.metadata.name);
    }
  }
  return ofKind(docs, "Deployment").filter((d) => names.has(d.metadata.name));
}

function autoscalersOf(docs, deployment) {
  const hpas = ofKind(docs, "HorizontalPodAutoscaler").filter(
    (h) => h.spec.scaleTargetRef.kind === "Deployment" && h.spec.scaleTargetRef.name === deployment.metadata.name,
  );
  const scaled = ofKind(docs, "ScaledObject").filter(
    (s) => (s.spec.scaleTargetRef.kind ?? "Deployment") === "Deployment" && s.spec.scaleTargetRef.name === deployment.metadata.name,
  );
  return [...hpas, ...scaled];
}

// ---- the checks -----------------------------------------------------------------------------

export const CHECKS = [
  {
    name: "probes",
    what: "every container of a long-running workload has a liveness and a readiness probe",
    run(docs) {
      const out = [];
      for (const w of workloads(docs).filter((w) => LONG_RUNNING.has(w.doc.kind))) {
        for (const c of w.pod.containers) {
          if (!c.livenessProbe) out.push(`${containerLabel(w, c)}: no livenessProbe`);
          if (!c.readinessProbe) out.push(`${containerLabel(w, c)}: no readinessProbe`);
        }
      }
      return out;
    },
  },
  {
    name: "resources",
    what: "every container requests and limits cpu and memory, requests within limits",
    run(docs) {
      const out = [];
      for (const w of workloads(docs)) {
        for (const c of w.containers) {
          for (const kind of ["requests", "limits"]) {
            for (const resource of ["cpu", "memory"]) {
              if (c.resources?.[kind]?.[resource] === undefined) {
                out.push(`${containerLabel(w, c)}: no ${kind}.${resource}`);
              }
            }
          }
          for (const [resource, request] of Object.entries(c.resources?.requests ?? {})) {
            const limit = c.resources?.limits?.[resource];
            if (limit !== undefined && quantity(request) > quantity(limit)) {
              out.push(`${containerLabel(w, c)}: requests.${resource} ${request} > limits ${limit}`);
            }
          }
        }
      }
      return out;
    },
  },
  {
    name: "security-context",
    what:
      "pods and containers run as non-root (vmp3: 10001), read-only root filesystem, no privilege " +
      "escalation, all capabilities dropped, RuntimeDefault seccomp, no service account token, no host access",
    run(docs) {
      const out = [];
      for (const w of workloads(docs)) {
        const pod = w.pod.securityContext ?? {};
        const user = isVmp3(w) ? VMP3_USER : null;
        if (pod.runAsNonRoot !== true) out.push(`${w.name}: pod securityContext.runAsNonRoot is not true`);
        for (const id of ["runAsUser", "runAsGroup"]) {
          if (!(pod[id] > 0)) out.push(`${w.name}: pod securityContext.${id} is not a non-root id`);
          else if (user && pod[id] !== user) out.push(`${w.name}: pod securityContext.${id} is ${pod[id]}, not ${user}`);
        }
        if (pod.seccompProfile?.type !== "RuntimeDefault") out.push(`${w.name}: pod seccompProfile is not RuntimeDefault`);
        if (w.pod.automountServiceAccountToken !== false) out.push(`${w.name}: automountServiceAccountToken is not false`);
        for (const host of ["hostNetwork", "hostPID", "hostIPC"]) if (w.pod[host]) out.push(`${w.name}: ${host}`);
        for (const v of w.pod.volumes ?? []) if (v.hostPath) out.push(`${w.name}: hostPath volume ${v.name}`);
        for (const c of w.containers) {
          const sc = c.securityContext ?? {};
          const where = containerLabel(w, c);
          if (sc.runAsNonRoot !== true) out.push(`${where}: runAsNonRoot is not true`);
          for (const id of ["runAsUser", "runAsGroup"]) {
            if (!(sc[id] > 0)) out.push(`${where}: ${id} is not a non-root id`);
            else if (user && sc[id] !== user) out.push(`${where}: ${id} is ${sc[id]}, not ${user}`);
          }
          if (sc.readOnlyRootFilesystem !== true) out.push(`${where}: readOnlyRootFilesystem is not true`);
          if (sc.allowPrivilegeEscalation !== false) out.push(`${where}: allowPrivilegeEscalation is not false`);
          if (sc.privileged === true) out.push(`${where}: privileged`);
          if (!(sc.capabilities?.drop ?? []).includes("ALL")) out.push(`${where}: capabilities.drop lacks ALL`);
          if ((sc.capabilities?.add ?? []).length) out.push(`${where}: capabilities.add ${sc.capabilities.add}`);
          if (sc.seccompProfile?.type !== "RuntimeDefault") out.push(`${where}: seccompProfile is not RuntimeDefault`);
        }
      }
      return out;
    },
  },
  {
    name: "images",
    what:
      "a moving tag (latest, or none) is never pulled again behind your back (pull policy Never or " +
      "IfNotPresent); production pins every image to a version or digest",
    run(docs, variant) {
      const out = [];
      for (const w of workloads(docs)) {
        for (const c of w.containers) {
          const digest = c.image.includes("@sha256:");
          const tag = /:([^/:@]+)$/.exec(c.image.split("@")[0])?.[1];
          const moving = !digest && (tag === undefined || tag === "latest");
          if (moving && !["Never", "IfNotPresent"].includes(c.imagePullPolicy)) {
            out.push(`${containerLabel(w, c)}: ${c.image} is a moving tag pulled with policy ${c.imagePullPolicy ?? "Always (default)"}`);
          }
          if (variant.overlay === "production" && moving) {
            out.push(`${containerLabel(w, c)}: production runs ${c.image}, not a pinned version`);
          }
        }
      }
      return out;
    },
  },
  {
    name: "no-secret-values",
    what: "base and production carry no Secret values (the operator creates them); only Minikube generates its own",
    run(docs, variant) {
      if (variant.overlay === "minikube") return [];
      return ofKind(docs, "Secret")
        .filter((s) => Object.keys(s.data ?? {}).length || Object.keys(s.stringData ?? {}).length)
        .map((s) => `${label(s)}: a Secret with values in ${variant.name}`);
    },
  },
  {
    name: "no-credentials-in-config",
    what:
      "no ConfigMap value carries credentials in a URL, and the URLs that do (queue, metadata) and the " +
      "S3 secret key reach vmp3 only from Secrets",
    run(docs) {
      const out = [];
      for (const map of ofKind(docs, "ConfigMap")) {
        for (const [k, v] of Object.entries(map.data ?? {})) {
          if (/[a-z][a-z0-9+.-]*:\/\/[^/\s@]*:[^/\s@]+@/i.test(v)) out.push(`${label(map)}: ${k} holds a URL with a password`);
        }
      }
      for (const w of workloads(docs).filter(isVmp3)) {
        for (const c of w.containers) {
          for (const e of c.env ?? []) {
            if (["VMP3_QUEUE", "VMP3_METADATA", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"].includes(e.name) && !e.valueFrom?.secretKeyRef) {
              out.push(`${containerLabel(w, c)}: ${e.name} not from a Secret`);
            }
          }
        }
      }
      return out;
    },
  },
  {
    name: "secret-references",
    what:
      "where the Secrets are part of the variant (Minikube), every Secret and key a pod or KEDA " +
      "refers to exists",
    run(docs) {
      const secrets = ofKind(docs, "Secret");
      if (secrets.length === 0) return [];
      const out = [];
      const check = (where, name, key) => {
        const secret = secrets.find((s) => s.metadata.name === name);
        if (!secret) out.push(`${where}: no Secret ${name}`);
        else if (key !== undefined && !Object.hasOwn({ ...secret.data, ...secret.stringData }, key)) {
          out.push(`${where}: Secret ${name} has no key ${key}`);
        }
      };
      for (const ref of secretReferences(docs)) check(ref.where, ref.name, ref.key);
      return out;
    },
  },
  {
    name: "roles",
    what: "each vmp3 Deployment runs `serve --roles <its component label>`",
    run(docs) {
      return workloads(docs)
        .filter(isVmp3)
        .flatMap((w) => {
          const args = w.pod.containers[0].args ?? [];
          return JSON.stringify(args) === JSON.stringify(["serve", "--roles", roleOf(w)])
            ? []
            : [`${w.name}: runs ${JSON.stringify(args)} but is labelled ${roleOf(w)}`];
        });
    },
  },
  {
    name: "drain",
    what:
      "vmp3 pods pause in preStop before SIGTERM, and terminationGracePeriodSeconds exceeds that " +
      "pause plus VMP3_DRAIN",
    run(docs) {
      const out = [];
      for (const w of workloads(docs).filter(isVmp3)) {
        const c = w.pod.containers[0];
        const preStop = c.lifecycle?.preStop;
        const pause = preStop?.sleep?.seconds ??
          Number(/^(?:\/bin\/)?sleep$/.test(preStop?.exec?.command?.[0] ?? "") ? preStop.exec.command[1] : NaN);
        if (!(pause > 0)) {
          out.push(`${w.name}: no preStop pause`);
          continue;
        }
        const drain = Number(envValue(docs, c, "VMP3_DRAIN") ?? 15);
        const grace = w.pod.terminationGracePeriodSeconds ?? 30;
        if (!(grace > pause + drain)) out.push(`${w.name}: grace ${grace}s <= preStop ${pause}s + drain ${drain}s`);
      }
      return out;
    },
  },
  {
    name: "volumes",
    what: "every volumeMount names a volume of its pod (or a claim template); emptyDirs are size-limited",
    run(docs) {
      const out = [];
      for (const w of workloads(docs)) {
        const volumes = new Map((w.pod.volumes ?? []).map((v) => [v.name, v]));
        const claims = new Set((w.doc.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name));
        for (const c of w.containers) {
          for (const m of c.volumeMounts ?? []) {
            if (!volumes.has(m.name) && !claims.has(m.name)) out.push(`${containerLabel(w, c)}: mounts unknown volume ${m.name}`);
          }
        }
        for (const v of volumes.values()) {
          if (v.emptyDir && !v.emptyDir.sizeLimit) out.push(`${w.name}: emptyDir ${v.name} has no sizeLimit`);
        }
      }
      return out;
    },
  },
  {
    name: "disruption-budgets",
    what: "every Deployment is covered by a PodDisruptionBudget, and every budget covers some pods",
    run(docs) {
      const out = [];
      const pdbs = ofKind(docs, "PodDisruptionBudget");
      const all = workloads(docs);
      for (const w of all.filter((w) => w.doc.kind === "Deployment")) {
        if (!pdbs.some((p) => namespaceOf(p) === w.namespace && selects(p.spec.selector, w.labels))) {
          out.push(`${w.name}: no PodDisruptionBudget selects its pods`);
        }
      }
      for (const p of pdbs) {
        if (!all.some((w) => namespaceOf(p) === w.namespace && selects(p.spec.selector, w.labels))) {
          out.push(`${label(p)}: selects no pods`);
        }
        if (p.spec.maxUnavailable === undefined && p.spec.minAvailable === undefined) {
          out.push(`${label(p)}: neither maxUnavailable nor minAvailable`);
        }
      }
      return out;
    },
  },
  {
    name: "autoscaling",
    what:
      "every HTTP role has an HPA; no Deployment has two autoscalers (HPA, KEDA ScaledObject); an " +
      "autoscaled Deployment sets no replicas; every autoscaler's target exists",
    run(docs) {
      const out = [];
      for (const d of httpDeployments(docs)) {
        if (!ofKind(docs, "HorizontalPodAutoscaler").some((h) => h.spec.scaleTargetRef.name === d.metadata.name)) {
          out.push(`${label(d)}: an HTTP role without a HorizontalPodAutoscaler`);
        }
      }
      for (const d of ofKind(docs, "Deployment")) {
        const scalers = autoscalersOf(docs, d);
        if (scalers.length > 1) out.push(`${label(d)}: scaled by ${scalers.map(label).join(" and ")}`);
        if (scalers.length && d.spec.replicas !== undefined) {
          out.push(`${label(d)}: sets replicas (${d.spec.replicas}) although ${label(scalers[0])} owns the count`);
        }
      }
      for (const s of [...ofKind(docs, "HorizontalPodAutoscaler"), ...ofKind(docs, "ScaledObject")]) {
        const target = s.spec.scaleTargetRef;
        if (!docs.some((d) => d.kind === (target.kind ?? "Deployment") && d.metadata.name === target.name)) {
          out.push(`${label(s)}: targets missing ${target.kind ?? "Deployment"}/${target.name}`);
        }
        const min = s.spec.minReplicas ?? s.spec.minReplicaCount ?? 1;
        const max = s.spec.maxReplicas ?? s.spec.maxReplicaCount;
        if (max !== undefined && min > max) out.push(`${label(s)}: min ${min} > max ${max}`);
      }
      return out;
    },
  },
  {
    name: "topology-spread",
    what: "every vmp3 Deployment spreads its replicas, with a selector that matches its own pods",
    run(docs) {
      return workloads(docs)
        .filter((w) => isVmp3(w) && w.doc.kind === "Deployment")
        .flatMap((w) => {
          const constraints = w.pod.topologySpreadConstraints ?? [];
          if (constraints.length === 0) return [`${w.name}: no topologySpreadConstraints`];
          return constraints
            .filter((t) => !selects(t.labelSelector, w.labels))
            .map((t) => `${w.name}: spread over ${t.topologyKey} selects other pods than its own`);
        });
    },
  },
  {
    name: "ingress-backends",
    what:
      "every Ingress path reaches a Service port that exists and whose target port is a port of the " +
      "pods it selects; with use-regex every path is ImplementationSpecific",
    run(docs) {
      const out = [];
      for (const ingress of ofKind(docs, "Ingress")) {
        if (!ingress.spec.ingressClassName) out.push(`${label(ingress)}: no ingressClassName`);
        const regex = ingress.metadata.annotations?.["nginx.ingress.kubernetes.io/use-regex"] === "true";
        for (const path of (ingress.spec.rules ?? []).flatMap((r) => r.http?.paths ?? [])) {
          const where = `${label(ingress)} path ${path.path}`;
          if (regex && path.pathType !== "ImplementationSpecific") {
            out.push(`${where}: pathType ${path.pathType} under use-regex (ingress-nginx makes it a regex prefix)`);
          }
          const ref = path.backend.service;
          const service = docs.find((d) => d.kind === "Service" && d.metadata.name === ref?.name && namespaceOf(d) === namespaceOf(ingress));
          if (!service) {
            out.push(`${where}: no Service ${ref?.name}`);
            continue;
          }
          const port = service.spec.ports.find((p) => (ref.port.name ? p.name === ref.port.name : p.port === ref.port.number));
          if (!port) {
            out.push(`${where}: Service ${ref.name} has no port ${ref.port.name ?? ref.port.number}`);
            continue;
          }
          const pods = servicePods(docs, service);
          if (pods.length === 0) out.push(`${where}: Service ${ref.name} selects no pods`);
          for (const w of pods) {
            const target = port.targetPort ?? port.port;
            const ok = w.pod.containers.some((c) =>
              (c.ports ?? []).some((p) => (typeof target === "string" ? p.name === target : p.containerPort === target)),
            );
            if (!ok) out.push(`${where}: ${w.name} has no port ${target}`);
          }
        }
      }
      return out;
    },
  },
  {
    name: "routes",
    what:
      "the Ingress sends every request to the same role as deploy/nginx/vmp3.conf.template " +
      "(except by method: documented decisions)",
    run(docs, variant, env) {
      const out = [];
      const roleOfService = (ref) => {
        const service = docs.find((d) => d.kind === "Service" && d.metadata.name === ref?.name);
        return service?.spec.selector?.["app.kubernetes.io/component"] ?? null;
      };
      for (const ingress of ofKind(docs, "Ingress")) {
        for (const { method, path } of sampleRequests(env.nginx)) {
          const upstream = nginxUpstream(env.nginx, method, path);
          const viaNginx = upstream?.replace(/^vmp3_/, "") ?? null;
          const viaIngress = roleOfService(ingressBackend(ingress, path));
          const decision = INGRESS_DECISIONS.find((d) => d.path === path);
          const expected = decision ? decision.ingress : viaNginx;
          const assumed = decision && (decision.nginx[method] ?? decision.nginx.default);
          if (decision && viaNginx !== assumed) {
            out.push(`${method} ${path}: the template now sends it to ${viaNginx}, the documented decision assumed ${assumed}`);
          }
          if (viaIngress !== expected) out.push(`${method} ${path}: nginx -> ${viaNginx}, Ingress -> ${viaIngress}`);
        }
      }
      return out;
    },
  },
  {
    name: "network-default-deny",
    what: "every pod is under a default-deny NetworkPolicy for both directions",
    run(docs) {
      const policies = ofKind(docs, "NetworkPolicy");
      return workloads(docs)
        .filter((w) => !deniedByDefault(policies, endpointOf(w)))
        .map((w) => `${w.name}: no default-deny NetworkPolicy covers its pods`);
    },
  },
  {
    name: "network-flows",
    what:
      "the NetworkPolicies allow the flows each role's configuration needs (expectedFlows) and " +
      "refuse the others tried",
    run(docs) {
      const policies = ofKind(docs, "NetworkPolicy");
      const out = [];
      for (const flow of expectedFlows(docs)) {
        const allowed = connectionAllowed(policies, flow.from, flow.to, flow.port, flow.protocol);
        if (allowed !== flow.allowed) {
          out.push(`${flow.text}: ${allowed ? "allowed, should be refused" : "refused, should be allowed"}`);
        }
      }
      return out;
    },
  },
  {
    name: "auth-url",
    what: "VMP3_AUTH_URL names the auth role's Service and port",
    run(docs) {
      const url = vmp3Config(docs).VMP3_AUTH_URL;
      const m = /^http:\/\/([a-z0-9-]+):(\d+)\/?$/.exec(url ?? "");
      if (!m) return [`VMP3_AUTH_URL ${url} is not http://SERVICE:PORT`];
      const service = docs.find((d) => d.kind === "Service" && d.metadata.name === m[1]);
      if (!service) return [`VMP3_AUTH_URL: no Service ${m[1]}`];
      const out = [];
      if (!service.spec.ports.some((p) => p.port === Number(m[2]))) out.push(`VMP3_AUTH_URL: Service ${m[1]} has no port ${m[2]}`);
      if (!servicePods(docs, service).some((w) => roleOf(w) === "auth")) out.push(`VMP3_AUTH_URL: Service ${m[1]} is not the auth role's`);
      return out;
    },
  },
];

// Every reference to a Secret: env, envFrom, volumes, KEDA's TriggerAuthentication.
export function secretReferences(docs) {
  const refs = [];
  for (const w of workloads(docs)) {
    for (const c of w.containers) {
      for (const e of c.env ?? []) {
        const r = e.valueFrom?.secretKeyRef;
        if (r) refs.push({ where: `${containerLabel(w, c)} env ${e.name}`, name: r.name, key: r.key });
      }
      for (const e of c.envFrom ?? []) {
        if (e.secretRef) refs.push({ where: `${containerLabel(w, c)} envFrom`, name: e.secretRef.name });
      }
    }
    for (const v of w.pod.volumes ?? []) {
      if (!v.secret) continue;
      const items = v.secret.items ?? [{}];
      for (const item of items) refs.push({ where: `${w.name} volume ${v.name}`, name: v.secret.secretName, key: item.key });
    }
  }
  for (const t of ofKind(docs, "TriggerAuthentication")) {
    for (const r of t.spec.secretTargetRef ?? []) refs.push({ where: `${label(t)} ${r.parameter}`, name: r.name, key: r.key });
  }
  return refs;
}

// ---- the flows the NetworkPolicies must allow and refuse ------------------------------------

const OUTSIDE = {
  ingressController: { namespace: "ingress-nginx", labels: { "app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller" } },
  prometheus: { namespace: "monitoring", labels: { "app.kubernetes.io/name": "prometheus" } },
  kedaOperator: { namespace: "keda", labels: { app: "keda-operator" } },
  dns: { namespace: "kube-system", labels: { "k8s-app": "kube-dns" }, ports: [{ name: "dns", containerPort: 53, protocol: "UDP" }] },
  otherNamespace: { namespace: "default-other", labels: { app: "something-else" } },
  internet: { ip: "203.0.113.10" },
  internet6: { ip: "2001:db8::10" },
  // Addresses a role calling users' URLs must never reach, whatever a user names.
  privateAddress: { ip: "10.1.2.3" },
  nodeAddress: { ip: "192.168.49.2" },
  cgnatAddress: { ip: "100.64.0.10" },
  cloudMetadata: { ip: "169.254.169.254" },
  cloudMetadata6: { ip: "fd00:ec2::254" },
  loopback: { ip: "127.0.0.1" },
};

// The roles that make requests to URLs their users choose (webhooks; SMTP relays): allowed out to
// public addresses on these ports, never to private ones (src/roles/notifier_role.hpp).
export const OUTBOUND_ROLES = ["notifier"];
export const OUTBOUND_PORTS = [443, 465, 587];
const PRIVATE_DESTINATIONS = [
  ["a private address", OUTSIDE.privateAddress],
  ["a node", OUTSIDE.nodeAddress],
  ["a CGNAT address", OUTSIDE.cgnatAddress],
  ["the cloud metadata service", OUTSIDE.cloudMetadata],
  ["the cloud metadata service", OUTSIDE.cloudMetadata6],
  ["loopback", OUTSIDE.loopback],
];

// What each vmp3 role must reach follows from its own configuration: the queue when it has
// VMP3_QUEUE, Redis with VMP3_METADATA, S3 with AWS keys, the auth role's JWKS when it serves HTTP
// without holding the signing key (VMP3_JWT_KEY), public addresses when it is one of the
// OUTBOUND_ROLES. So a new role is covered as soon as it exists, and a policy that disagrees with
// what a role connects to fails here.
export function expectedFlows(docs) {
  const ws = workloads(docs);
  const roles = ws.filter((w) => isVmp3(w) && w.doc.kind === "Deployment");
  const namespace = roles[0]?.namespace ?? "default";
  const stranger = { namespace, labels: { app: "something-else" } };
  const http = new Set(httpDeployments(docs).map((d) => d.metadata.name));
  const hasEnv = (w, name) => (w.pod.containers[0].env ?? []).some((e) => e.name === name);
  const needs = (w) => ({
    http: http.has(w.doc.metadata.name),
    queue: hasEnv(w, "VMP3_QUEUE"),
    redis: hasEnv(w, "VMP3_METADATA"),
    s3: hasEnv(w, "AWS_ACCESS_KEY_ID"),
    jwks: http.has(w.doc.metadata.name) && !hasEnv(w, "VMP3_JWT_KEY"),
    outbound: OUTBOUND_ROLES.includes(roleOf(w)),
  });
  const auth = roles.find((w) => hasEnv(w, "VMP3_JWT_KEY"));
  const byInstance = (name) => ws.find((w) => w.labels["app.kubernetes.io/instance"] === name);
  const flows = [];
  const add = (fromName, from, toName, to, port, allowed, protocol = "TCP") => {
    if (!from || !to) return;
    flows.push({
      from: from.doc ? endpointOf(from) : from,
      to: to.doc ? endpointOf(to) : to,
      port,
      protocol,
      allowed,
      text: `${fromName} -> ${toName}:${port}/${protocol}`,
    });
  };
  // The in-cluster backends of the Minikube overlay (absent elsewhere: those flows are skipped).
  const rabbitmq = byInstance("vmp3-rabbitmq");
  const redis = byInstance("vmp3-redis");
  const minio = byInstance("vmp3-minio");
  for (const w of roles) {
    const r = roleOf(w);
    const n = needs(w);
    add("ingress controller", OUTSIDE.ingressController, r, w, 8080, n.http);
    add("prometheus", OUTSIDE.prometheus, r, w, 8080, true);
    add("another namespace", OUTSIDE.otherNamespace, r, w, 8080, false);
    add("another pod of the namespace", stranger, r, w, 8080, false);
    add(r, w, "DNS", OUTSIDE.dns, 53, true, "UDP");
    add(r, w, "the internet", OUTSIDE.internet, 80, false);
    add(r, w, "Redis", OUTSIDE.internet, 6379, n.redis);
    add(r, w, "RabbitMQ", OUTSIDE.internet, 5672, n.queue);
    // Public addresses: S3 on 443 (a webhook receiver there is the same flow), and the ports of
    // the roles calling users' URLs.
    for (const port of OUTBOUND_PORTS) {
      const allowed = n.outbound || (port === 443 && n.s3);
      add(r, w, port === 443 ? "S3 or the internet" : "the internet", OUTSIDE.internet, port, allowed);
      add(r, w, "the internet (IPv6)", OUTSIDE.internet6, port, allowed);
    }
    add(r, w, "the internet", OUTSIDE.internet, 8443, false);
    // S3 on a private network (managed services' addresses are not known, so the S3 rule names
    // only the port); a role calling users' URLs must not get there.
    add(r, w, "S3 on a private address", OUTSIDE.privateAddress, 443, n.s3);
    if (n.outbound) {
      for (const [name, where] of PRIVATE_DESTINATIONS) {
        for (const port of [80, ...OUTBOUND_PORTS]) add(r, w, `${name} ${where.ip}`, where, port, false);
      }
    }
    if (w !== auth) add(r, w, "auth", auth, 8080, n.jwks);
    add(r, w, "rabbitmq", rabbitmq, 5672, n.queue);
    add(r, w, "redis", redis, 6379, n.redis);
    add(r, w, "minio", minio, 9000, n.s3);
  }
  const bucketJob = ws.find((w) => w.doc.kind === "Job" && w.labels["app.kubernetes.io/name"] === "minio-bucket");
  add("minio-bucket job", bucketJob, "minio", minio, 9000, true);
  add("minio-bucket job", bucketJob, "redis", redis, 6379, false);
  add("keda operator", OUTSIDE.kedaOperator, "rabbitmq management", rabbitmq, 15672, true);
  add("another pod of the namespace", stranger, "redis", redis, 6379, false);
  add("another namespace", OUTSIDE.otherNamespace, "rabbitmq", rabbitmq, 5672, false);
  add("ingress controller", OUTSIDE.ingressController, "minio", minio, 9000, false);
  return flows;
}
