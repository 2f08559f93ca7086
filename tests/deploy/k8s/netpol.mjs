// NetworkPolicy semantics, enough to ask "may this pod open that connection?" of a rendered
// manifest: a connection needs the source's egress and the destination's ingress allowed; a
// direction is open for a pod no policy of that direction selects, and otherwise only where one
// of those policies has a rule whose peers and ports match. (What a conforming network plugin
// does; https://kubernetes.io/docs/concepts/services-networking/network-policies/.)

// Does a LabelSelector select these labels? An empty selector selects everything.
export function selects(selector, labels = {}) {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok = {
      In: has && e.values.includes(labels[e.key]),
      NotIn: !has || !e.values.includes(labels[e.key]),
      Exists: has,
      DoesNotExist: !has,
    }[e.operator];
    if (!ok) return false;
  }
  return true;
}

const namespaceLabels = (name) => ({ "kubernetes.io/metadata.name": name });

function policyTypes(policy) {
  return policy.spec.policyTypes ?? (policy.spec.egress ? ["Ingress", "Egress"] : ["Ingress"]);
}

// An address as [family, BigInt]: IPv4 dotted quads, IPv6 with `::` and an embedded IPv4 tail.
function parseAddress(text) {
  if (!text.includes(":")) {
    const octets = text.split(".").map(Number);
    if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) throw new Error(`bad address ${text}`);
    return [4, octets.reduce((n, o) => (n << 8n) + BigInt(o), 0n)];
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, null];
  const groups = (part) => {
    if (!part) return [];
    const out = [];
    for (const g of part.split(":")) {
      if (g.includes(".")) {
        const v4 = parseAddress(g)[1];
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const left = groups(head);
  const right = groups(tail);
  const missing = 8 - left.length - right.length;
  if (tail === null ? missing !== 0 : missing < 1) throw new Error(`bad address ${text}`);
  const all = [...left, ...Array(tail === null ? 0 : missing).fill(0), ...right];
  return [6, all.reduce((n, g) => (n << 16n) + BigInt(g), 0n)];
}

// Is the address inside the CIDR? Never across families: an IPv4 address is in no IPv6 block.
export function ipInCidr(ip, cidr) {
  const [base, bitsText] = cidr.split("/");
  const [family, address] = parseAddress(ip);
  const [cidrFamily, network] = parseAddress(base);
  if (family !== cidrFamily) return false;
  const width = family === 4 ? 32n : 128n;
  const bits = BigInt(bitsText ?? width);
  const hostBits = width - bits;
  return address >> hostBits === network >> hostBits;
}

// A peer list matches an endpoint (a pod {namespace, labels}, or an address {ip}).
function peersMatch(peers, endpoint, policyNamespace) {
  if (!peers || peers.length === 0) return true;
  return peers.some((peer) => {
    if (peer.ipBlock) {
      return (
        endpoint.ip !== undefined &&
        ipInCidr(endpoint.ip, peer.ipBlock.cidr) &&
        !(peer.ipBlock.except ?? []).some((c) => ipInCidr(endpoint.ip, c))
      );
    }
    if (endpoint.ip !== undefined) return false;
    const namespaceOk = peer.namespaceSelector
      ? selects(peer.namespaceSelector, namespaceLabels(endpoint.namespace))
      : endpoint.namespace === policyNamespace;
    const podOk = peer.podSelector ? selects(peer.podSelector, endpoint.labels) : true;
    return namespaceOk && podOk;
  });
}

// A port list matches the destination port (named ports resolve on the destination pod).
function portsMatch(ports, destination, port, protocol) {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? "TCP") !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "string") {
      return (destination.ports ?? []).some((c) => c.name === p.port && c.containerPort === port);
    }
    return p.endPort ? port >= p.port && port <= p.endPort : p.port === port;
  });
}

function directionAllows(policies, pod, direction, peer, destination, port, protocol) {
  if (pod.ip !== undefined) return true; // outside the cluster: no policy applies
  const applying = policies.filter(
    (p) =>
      (p.metadata.namespace ?? "default") === pod.namespace &&
      policyTypes(p).includes(direction) &&
      selects(p.spec.podSelector, pod.labels),
  );
  if (applying.length === 0) return true;
  const rulesOf = (p) => (direction === "Egress" ? p.spec.egress : p.spec.ingress) ?? [];
  const peersOf = (r) => (direction === "Egress" ? r.to : r.from);
  return applying.some((p) =>
    rulesOf(p).some(
      (r) =>
        peersMatch(peersOf(r), peer, p.metadata.namespace ?? "default") &&
        portsMatch(r.ports, destination, port, protocol),
    ),
  );
}

// May `from` connect to `to` on port/protocol? Endpoints: {namespace, labels, ports} or {ip}.
export function connectionAllowed(policies, from, to, port, protocol = "TCP") {
  return (
    directionAllows(policies, from, "Egress", to, to, port, protocol) &&
    directionAllows(policies, to, "Ingress", from, to, port, protocol)
  );
}

// Is the pod under a default deny in both directions (a policy selecting it with no rules)?
export function deniedByDefault(policies, pod) {
  const denies = (direction) =>
    policies.some(
      (p) =>
        (p.metadata.namespace ?? "default") === pod.namespace &&
        policyTypes(p).includes(direction) &&
        selects(p.spec.podSelector, pod.labels) &&
        ((direction === "Egress" ? p.spec.egress : p.spec.ingress) ?? []).length === 0,
    );
  return denies("Ingress") && denies("Egress");
}
