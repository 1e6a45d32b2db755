/**
 * Proves the manifests in deploy/kubernetes form one working 3-node cluster: selectors match the
 * pod labels, the StatefulSet starts its pods in parallel behind a headless Service that publishes
 * not-ready pods (peers must resolve each other before any node is ready), probes hit /ready and
 * /health on the node's port, the PDB allows one pod down, the secret comes from the Secret, each
 * pod's data directory is its own claim, and for every ordinal the environment (after the downward
 * API fills in the pod name and namespace) passes the server's configuration check with a node id
 * equal to the pod name and a peer list matching the replica count. The manifests are read with
 * `yaml` through the kustomization's resource list, so nothing here needs kubectl; kubectl's own
 * verdict is `npm run check:deploy` (test/deploy/check-with-tools.sh).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadServerConfig } from '../../packages/node/src/config/config.js';
import { REPO_ROOT } from '../support/cluster.js';
import { parsePeerList, splitHostPort } from './compose.js';

const DIR = join(REPO_ROOT, 'deploy/kubernetes');

// Manifests are free-form YAML; the test reads them as loosely typed trees.
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
type Obj = any;

function loadYaml(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS())
    .filter((o) => o);
}

const kustomization = loadYaml(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8'))[0];
const objects: Obj[] = (kustomization.resources as string[]).flatMap((file) =>
  loadYaml(readFileSync(join(DIR, file), 'utf8')),
);
const one = (kind: string, pick: (o: Obj) => boolean = () => true): Obj => {
  const found = objects.filter((o) => o.kind === kind && pick(o));
  expect(found, `${kind} objects`).toHaveLength(1);
  return found[0];
};

const sts = one('StatefulSet');
const podLabels: Record<string, string> = sts.spec.template.metadata.labels;
const container = sts.spec.template.spec.containers[0];
const headless = one('Service', (s) => s.spec.clusterIP === 'None');
const clientService = one('Service', (s) => s.spec.clusterIP !== 'None');
const matches = (selector: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => podLabels[k] === v);

/** The container's environment for one pod, with `$(VAR)` references expanded as the kubelet does. */
function podEnvironment(ordinal: number, namespace: string, secret: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env as Obj[]) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = `${sts.metadata.name}-${ordinal}`;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = namespace;
    else if (e.valueFrom?.secretKeyRef) env[e.name] = secret;
    else env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n) => env[n] ?? m);
  }
  return env;
}

describe('Kubernetes manifests', () => {
  it('lists every manifest in the kustomization, each with a kind', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'Service',
      'StatefulSet',
    ]);
  });

  it('runs 3 replicas started in parallel behind the headless service', () => {
    expect(sts.spec.replicas).toBe(3);
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    expect(sts.spec.serviceName).toBe(headless.metadata.name);
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
  });

  it('selects its own pods everywhere: StatefulSet, both services, PDB', () => {
    expect(sts.spec.selector.matchLabels).toEqual(podLabels);
    expect(matches(headless.spec.selector)).toBe(true);
    expect(matches(clientService.spec.selector)).toBe(true);
    const pdb = one('PodDisruptionBudget');
    expect(matches(pdb.spec.selector.matchLabels)).toBe(true);
    expect(pdb.spec.maxUnavailable).toBe(1);
  });

  it('probes /ready for readiness and /health for liveness on the listening port', () => {
    const port = container.ports[0];
    const listen = splitHostPort(podEnvironment(0, 'ns', 'x').FLOTILLA_LISTEN!);
    expect(port.containerPort).toBe(listen.port);
    expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port: port.name });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: port.name });
    for (const svc of [headless, clientService]) expect(svc.spec.ports[0].targetPort).toBe(port.name);
  });

  it('reads the cluster secret from the Secret it ships', () => {
    const ref = container.env.find((e: Obj) => e.name === 'FLOTILLA_CLUSTER_SECRET').valueFrom.secretKeyRef;
    const secret = one('Secret');
    expect(secret.metadata.name).toBe(ref.name);
    expect(Object.keys(secret.stringData ?? secret.data)).toContain(ref.key);
  });

  it('keeps each pod’s data directory on its own volume claim, writable by the non-root user', () => {
    const dataDir = podEnvironment(0, 'ns', 'x').FLOTILLA_DATA_DIR;
    const mount = container.volumeMounts.find((m: Obj) => m.mountPath === dataDir);
    expect(mount).toBeDefined();
    expect(sts.spec.volumeClaimTemplates.map((c: Obj) => c.metadata.name)).toContain(mount.name);
    const security = sts.spec.template.spec.securityContext;
    expect(security.runAsNonRoot).toBe(true);
    expect(security.runAsUser).not.toBe(0);
    expect(security.fsGroup).toBe(security.runAsGroup);
  });

  it('gives every pod a config the server accepts: id = pod name, peers = all replicas', () => {
    const replicas: number = sts.spec.replicas;
    const podNames = Array.from({ length: replicas }, (_, i) => `${sts.metadata.name}-${i}`);
    for (let i = 0; i < replicas; i++) {
      const env = podEnvironment(i, 'queues', 'a-long-enough-secret');
      expect(env.FLOTILLA_PEERS).not.toContain('$(');
      const config = loadServerConfig({}, env, '/');
      expect(config.nodeId).toBe(podNames[i]);
      expect([...config.peers.keys()]).toEqual(podNames);
      expect(config.peers.get(config.nodeId)).toEqual(config.advertise);
      expect(config.advertise.host).toBe(`${podNames[i]}.${headless.metadata.name}.queues.svc.cluster.local`);
      const peers = parsePeerList(env.FLOTILLA_PEERS!);
      for (const [id, address] of peers) {
        expect(address).toBe(
          `${id}.${headless.metadata.name}.queues.svc.cluster.local:${config.listen.port}`,
        );
      }
    }
  });
});
