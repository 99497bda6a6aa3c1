/**
 * A local upstream stand-in for Intel PCS and AMD KDS that replays the real vendor answers under
 * test/vectors with the headers PCS sends (issuer chains URL-encoded PEM, TCBm, FMSPC, CA type).
 * The bodies are the fixture bytes, untouched. Plain http on 127.0.0.1; tests can inject failures.
 */
import { type IncomingMessage, type Server, createServer } from 'node:http';
import { parsePckSgxExtension } from '../../src/evidence/dcap/pck-extension.js';
import { parseCertificate, pemToDer } from '../../src/core/x509.js';
import { readFixture, readFixtureJson, readFixtureText } from '../fixtures.js';

export interface StandinResponse {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | string;
  /** A slow-drip upstream: the body is sent one byte every `dripMs` milliseconds. */
  readonly dripMs?: number;
}

/** Which collateral set answers the FMSPC-independent routes (QE identity, PCK CRL, root CRL). */
export type StandinSet = 'teepot' | 'sgx-phala' | 'tdx-phala' | FolderSetName;

/**
 * Collateral sets captured with one quote each (test/vectors/intel/<folder>): the TCB info of the quote's
 * FMSPC, the QE identity, the PCK CRL and the root CA CRL, each with the issuer chain it was served with.
 */
export interface FolderSet {
  readonly tee: 'sgx' | 'tdx';
  readonly fmspc: string;
  readonly folder: string;
  readonly tcb: string;
  readonly qe: string;
  readonly ca: 'processor' | 'platform';
  readonly pckCrl: string;
  readonly rootCrl: string;
  /** Issuer chains (PEM): TCB signing for TCB info and identity, the PCK CA for the CRL. */
  readonly signingChain: string;
  readonly crlChain: string;
}

const derChain = (folder: string, ...ders: string[]) => ders.map((f) => `-----BEGIN CERTIFICATE-----\n${readFixture('intel', folder, f).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`).join('');
const rootPem = () => readFixtureText('intel', 'roots', 'Intel_SGX_Provisioning_Certification_RootCA.pem');

export const FOLDER_SETS = {
  'sgx-phala': () => ({ tee: 'sgx', fmspc: '00A067110000', folder: 'sgx-v3-phala', tcb: 'tcb_info_response.json', qe: 'qe_identity_response.json', ca: 'processor', pckCrl: 'pck_crl.der', rootCrl: 'root_ca_crl.der', signingChain: readFixtureText('intel', 'sgx-v3-phala', 'tcb_info_issuer_chain.pem'), crlChain: readFixtureText('intel', 'sgx-v3-phala', 'pck_crl_issuer_chain.pem') }),
  'sgx-occlum': () => ({ tee: 'sgx', fmspc: '00606A000000', folder: 'sgx-v3-occlum-platformca', tcb: 'sgx_tcbinfov3_00606a000000.json', qe: 'sgx_qeidentity_v4.json', ca: 'platform', pckCrl: 'platform_crl.der', rootCrl: 'intel_root_ca_crl.der', signingChain: derChain('sgx-v3-occlum-platformca', 'tcb_signing.der') + rootPem(), crlChain: derChain('sgx-v3-occlum-platformca', 'platform_ca.der') + rootPem() }),
  'tdx-phala': () => ({ tee: 'tdx', fmspc: 'B0C06F000000', folder: 'tdx-v4-phala', tcb: 'tcb_info_response.json', qe: 'qe_identity_response.json', ca: 'platform', pckCrl: 'pck_crl.der', rootCrl: 'root_ca_crl.der', signingChain: readFixtureText('intel', 'tdx-v4-phala', 'tcb_info_issuer_chain.pem'), crlChain: readFixtureText('intel', 'tdx-v4-phala', 'pck_crl_issuer_chain.pem') }),
  'tdx-automata': () => ({ tee: 'tdx', fmspc: '00806F050000', folder: 'tdx-v4-automata', tcb: 'tcb_info_v3_with_tdx_module.json', qe: 'qe_identity.json', ca: 'platform', pckCrl: 'pck_platform_crl.der', rootCrl: 'intel_root_ca_crl.der', signingChain: derChain('tdx-v4-automata', 'signing.der', 'root.der'), crlChain: derChain('tdx-v4-automata', 'platform.der', 'root.der') }),
  'tdx-azure': () => ({ tee: 'tdx', fmspc: '00806F050000', folder: 'tdx-v4-azure-trustee', tcb: 'tcb_info.json', qe: 'identity.json', ca: 'platform', pckCrl: 'pck_crl.der', rootCrl: 'intel_root_ca_crl.der', signingChain: derChain('tdx-v4-azure-trustee', 'tcb_signing.der') + rootPem(), crlChain: derChain('tdx-v4-azure-trustee', 'platform_ca.der') + rootPem() }),
  'tdx-v5': () => ({ tee: 'tdx', fmspc: '90C06F000000', folder: 'tdx-v5-fmspc90C06F', tcb: 'tcb_info_response.json', qe: 'qe_identity_response.json', ca: 'platform', pckCrl: 'pck_crl.der', rootCrl: 'root_ca_crl.der', signingChain: readFixtureText('intel', 'tdx-v5-fmspc90C06F', 'tcb_info_issuer_chain.pem'), crlChain: readFixtureText('intel', 'tdx-v5-fmspc90C06F', 'pck_crl_issuer_chain.pem') }),
} as const satisfies Record<string, () => FolderSet>;
export type FolderSetName = Exclude<keyof typeof FOLDER_SETS, 'sgx-phala' | 'tdx-phala'>;

/** The answers of a folder set for the FMSPC-independent routes and its own FMSPC; undefined elsewhere. */
function folderRoute(f: FolderSet, path: string, q: URLSearchParams): StandinResponse | undefined {
  const chainHeaders = (h: string, chain: string) => ({ 'content-type': 'application/json', [h]: enc(chain) });
  if (path === `/${f.tee}/certification/v4/tcb` && q.get('fmspc')?.toUpperCase() === f.fmspc) {
    return { status: 200, headers: chainHeaders('TCB-Info-Issuer-Chain', f.signingChain), body: readFixtureText('intel', f.folder, f.tcb) };
  }
  if (path === `/${f.tee}/certification/v4/qe/identity`) return { status: 200, headers: chainHeaders('SGX-Enclave-Identity-Issuer-Chain', f.signingChain), body: readFixtureText('intel', f.folder, f.qe) };
  if (path === '/sgx/certification/v4/pckcrl' && q.get('ca')?.toLowerCase() === f.ca) {
    const der = readFixture('intel', f.folder, f.pckCrl);
    const asDer = q.get('encoding') === 'der';
    return { status: 200, headers: { 'content-type': asDer ? 'application/pkix-crl' : 'application/x-pem-file', 'SGX-PCK-CRL-Issuer-Chain': enc(f.crlChain) }, body: asDer ? der : `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END X509 CRL-----\n` };
  }
  if (path === '/sgx/certification/v4/rootcacrl') return { status: 200, headers: { 'content-type': 'application/pkix-crl' }, body: readFixture('intel', f.folder, f.rootCrl).toString('hex') };
  return undefined;
}

export interface PcsStandin {
  readonly url: string;
  /** Every request as `METHOD path?query`. */
  readonly requests: string[];
  count(pathPart: string): number;
  /** The next `n` requests whose path contains `pathPart` get these answers, in order. */
  inject(pathPart: string, responses: StandinResponse[]): void;
  /** Delay every answer (so bursts overlap). */
  setDelay(ms: number): void;
  /** Every request whose path contains `pathPart` gets this answer until it is set to undefined. */
  override(pathPart: string, response: StandinResponse | undefined): void;
  close(): Promise<void>;
}

const enc = (pem: string) => encodeURIComponent(pem);
const teepot = (f: string) => readFixtureJson<Record<string, string>>('intel', 'pcs-responses-teepot', f);

function json(body: string, chainHeader: string, chain: string): StandinResponse {
  return { status: 200, headers: { 'content-type': 'application/json', [chainHeader]: enc(chain) }, body };
}

/** A PCS JSON answer (TCB info, identity) with its issuer-chain header, for overrides. */
export const jsonAnswer = json;

/** A PCS PCK CRL answer (DER) with its issuer-chain header, for overrides. */
export function crlAnswer(der: Buffer, chain: string): StandinResponse {
  return { status: 200, headers: { 'content-type': 'application/pkix-crl', 'SGX-PCK-CRL-Issuer-Chain': enc(chain) }, body: der };
}

/** The PCK chain embedded in a quote's certification data (type 5): PEM leaf, then CA, then root. */
function pckChainOfQuote(quote: Buffer): string[] {
  const text = quote.toString('latin1');
  const pems = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g) ?? [];
  return pems.map((p) => (p.endsWith('\n') ? p : `${p}\n`));
}

export function pckCertAnswer(quoteParts: string[]): StandinResponse {
  const [leaf, ...chain] = pckChainOfQuote(readFixture(...quoteParts));
  const ext = parsePckSgxExtension(parseCertificate(pemToDer(leaf!)[0]!));
  const pcesvn = Buffer.alloc(2);
  pcesvn.writeUInt16LE(ext.pcesvn);
  const cpusvn = Buffer.from(ext.sgxTcbComponents).toString('hex');
  const ca = parseCertificate(pemToDer(chain[0]!)[0]!).subjectCN?.includes('Platform') ? 'platform' : 'processor';
  return {
    status: 200,
    headers: {
      'content-type': 'application/x-pem-file',
      'SGX-PCK-Certificate-Issuer-Chain': enc(chain.join('')),
      'SGX-TCBm': `${cpusvn}${pcesvn.toString('hex')}`.toUpperCase(),
      'SGX-FMSPC': ext.fmspc.toUpperCase(),
      'SGX-PCK-Certificate-CA-Type': ca,
    },
    body: leaf!,
  };
}

/**
 * Two real machines of one FMSPC (00A067110000) with the same raw TCB: what PCS knows of each, by
 * encrypted PPID (PCS) or QE ID (a PCCS-like upstream). The PPIDs and QE IDs are made up; the
 * certificates are the real leaves of the two sgx-v3-phala quotes.
 */
export const STANDIN_PLATFORMS = [
  { qeId: '11111111111111111111111111111111', encPpid: 'A1'.repeat(384), manifest: 'C1'.repeat(64), quote: ['intel', 'sgx-v3-phala', 'quote.bin'] },
  { qeId: '22222222222222222222222222222222', encPpid: 'B2'.repeat(384), manifest: 'C2'.repeat(64), quote: ['intel', 'sgx-v3-phala', 'quote2-automata.bin'] },
] as const;

/** PCS's `pckcerts` answer for one platform: every TCB level it has a certificate for (here one). */
function pckCertsAnswer(quote: readonly string[]): StandinResponse {
  const one = pckCertAnswer([...quote]);
  const h = one.headers!;
  const tcbm = Buffer.from(h['SGX-TCBm']!, 'hex');
  const tcb: Record<string, number> = {};
  for (let i = 0; i < 16; i++) tcb[`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`] = tcbm[i]!;
  tcb.pcesvn = tcbm.readUInt16LE(16);
  const body = JSON.stringify([{ tcb, tcbm: h['SGX-TCBm'], cert: encodeURIComponent(String(one.body)) }]);
  return { status: 200, headers: { 'content-type': 'application/json', 'SGX-PCK-Certificate-Issuer-Chain': h['SGX-PCK-Certificate-Issuer-Chain']!, 'SGX-FMSPC': h['SGX-FMSPC']!, 'SGX-PCK-Certificate-CA-Type': h['SGX-PCK-Certificate-CA-Type']! }, body };
}

/** The PCE-ID (4 upper-case hex digits) of the PCK certificate in a quote. */
function pceIdOf(quote: readonly string[]): string {
  const [leaf] = pckChainOfQuote(readFixture(...quote));
  return parsePckSgxExtension(parseCertificate(pemToDer(leaf!)[0]!)).pceId.toUpperCase();
}

/** Which platform a PCK request names: an all-zero or unknown PPID names none (PCS answers 404). */
function platformOf(q: URLSearchParams, manifest?: string): (typeof STANDIN_PLATFORMS)[number] | 'default' | undefined {
  if (manifest !== undefined) return STANDIN_PLATFORMS.find((p) => p.manifest === manifest.toUpperCase());
  const ppid = q.get('encrypted_ppid')?.toUpperCase();
  if (ppid !== undefined) {
    if (/^0+$/.test(ppid)) return undefined;
    return STANDIN_PLATFORMS.find((p) => p.encPpid === ppid) ?? 'default';
  }
  const qeid = q.get('qeid')?.toUpperCase();
  return STANDIN_PLATFORMS.find((p) => p.qeId === qeid) ?? 'default';
}

function route(set: StandinSet, path: string, q: URLSearchParams, body?: string): StandinResponse | undefined {
  if (set in FOLDER_SETS && set !== 'sgx-phala' && set !== 'tdx-phala') {
    const hit = folderRoute(FOLDER_SETS[set as FolderSetName](), path, q);
    if (hit) return hit;
  }
  const fmspc = q.get('fmspc')?.toUpperCase();
  const early = q.get('update') === 'early' || q.get('tcbEvaluationDataNumber') === '19';
  const evalN = q.get('tcbEvaluationDataNumber');
  const v4tcb = (f: string) => {
    const t = teepot(f);
    return json(t.tcb_info_json!, 'TCB-Info-Issuer-Chain', t.issuer_chain!);
  };
  // Intel PCS answers an evaluation number it does not have with 410 (Gone); the fixtures hold 17 and 19.
  if (/\/q[va]?e\/identity$/.test(path) && evalN !== null && evalN !== '17' && evalN !== '19') return { status: 410 };
  const folder = (dir: string, header = 'TCB-Info-Issuer-Chain') => json(readFixtureText('intel', dir, 'tcb_info_response.json'), header, readFixtureText('intel', dir, 'tcb_info_issuer_chain.pem'));
  switch (path) {
    case '/sgx/certification/v4/tcb':
      if (fmspc === '00906ED50000') {
        if (evalN !== null && evalN !== '17' && evalN !== '19') return { status: 410 };
        return v4tcb(early ? 'sgx_tcb_info_early.json' : 'sgx_tcb_info_00906ED50000.json');
      }
      if (fmspc === '00A067110000') return folder('sgx-v3-phala');
      return undefined;
    case '/sgx/certification/v3/tcb':
      if (fmspc === '00906ED50000') {
        const t = teepot('sgx_tcb_info_v3.json');
        return json(t.tcb_info_json!, 'SGX-TCB-Info-Issuer-Chain', t.issuer_chain!);
      }
      if (fmspc === '00A067110000') return folder('sgx-v3-phala', 'SGX-TCB-Info-Issuer-Chain');
      return undefined;
    case '/tdx/certification/v4/tcb':
      if (fmspc === '00806F050000') return v4tcb('tdx_tcb_info.json');
      if (fmspc === 'B0C06F000000') return folder('tdx-v4-phala');
      if (fmspc === '90C06F000000') return folder('tdx-v5-fmspc90C06F');
      return undefined;
    case '/sgx/certification/v4/qe/identity':
    case '/sgx/certification/v3/qe/identity': {
      if (set === 'sgx-phala') return json(readFixtureText('intel', 'sgx-v3-phala', 'qe_identity_response.json'), 'SGX-Enclave-Identity-Issuer-Chain', readFixtureText('intel', 'sgx-v3-phala', 'qe_identity_issuer_chain.pem'));
      const t = teepot(path.includes('v3') ? 'sgx_qe_identity_v3.json' : 'sgx_qe_identity.json');
      return json(t.enclave_identity_json!, 'SGX-Enclave-Identity-Issuer-Chain', t.issuer_chain!);
    }
    case '/sgx/certification/v4/qve/identity':
    case '/sgx/certification/v3/qve/identity':
    case '/sgx/certification/v4/qae/identity': {
      const t = teepot(path.includes('qae') ? 'sgx_qae_identity.json' : 'sgx_qve_identity.json');
      return json(t.enclave_identity_json!, 'SGX-Enclave-Identity-Issuer-Chain', t.issuer_chain!);
    }
    case '/tdx/certification/v4/qe/identity': {
      if (set === 'tdx-phala') return json(readFixtureText('intel', 'tdx-v4-phala', 'qe_identity_response.json'), 'SGX-Enclave-Identity-Issuer-Chain', readFixtureText('intel', 'tdx-v4-phala', 'qe_identity_issuer_chain.pem'));
      const t = teepot('tdx_qe_identity.json');
      return json(t.enclave_identity_json!, 'SGX-Enclave-Identity-Issuer-Chain', t.issuer_chain!);
    }
    case '/sgx/certification/v4/tcbevaluationdatanumbers':
    case '/tdx/certification/v4/tcbevaluationdatanumbers': {
      const t = teepot(path.startsWith('/sgx') ? 'sgx_tcb_eval_nums.json' : 'tdx_tcb_eval_nums.json');
      return json(t.tcb_evaluation_data_numbers_json!, 'TCB-Evaluation-Data-Numbers-Issuer-Chain', t.issuer_chain!);
    }
    case '/sgx/certification/v4/pckcrl':
    case '/sgx/certification/v3/pckcrl': {
      const ca = q.get('ca')?.toLowerCase();
      const der = q.get('encoding') === 'der';
      const crl = (body: Buffer, chain: string): StandinResponse => ({
        status: 200,
        headers: { 'content-type': der ? 'application/pkix-crl' : 'application/x-pem-file', 'SGX-PCK-CRL-Issuer-Chain': enc(chain) },
        body: der ? body : `-----BEGIN X509 CRL-----\n${body.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END X509 CRL-----\n`,
      });
      if (set === 'sgx-phala' && ca === 'processor') return crl(readFixture('intel', 'sgx-v3-phala', 'pck_crl.der'), readFixtureText('intel', 'sgx-v3-phala', 'pck_crl_issuer_chain.pem'));
      if (set === 'tdx-phala' && ca === 'platform') return crl(readFixture('intel', 'tdx-v4-phala', 'pck_crl.der'), readFixtureText('intel', 'tdx-v4-phala', 'pck_crl_issuer_chain.pem'));
      if (ca === 'processor') {
        const t = teepot('pck_crl_processor_der.json');
        return crl(Buffer.from(t.crl_data_base64!, 'base64'), t.issuer_chain!);
      }
      if (ca === 'platform') {
        const t = teepot('pck_crl_platform.json');
        return crl(Buffer.from(pemToDer(t.crl_data!, 'X509 CRL')[0]!), t.issuer_chain!);
      }
      return { status: 400 };
    }
    case '/sgx/certification/v4/rootcacrl': {
      const dir = set === 'tdx-phala' ? 'tdx-v4-phala' : 'sgx-v3-phala';
      // PCCS answers the root CA CRL as hex of the DER (§3.2).
      return { status: 200, headers: { 'content-type': 'application/pkix-crl' }, body: readFixture('intel', dir, 'root_ca_crl.der').toString('hex') };
    }
    case '/sgx/certification/v4/pckcert':
    case '/sgx/certification/v3/pckcert':
    case '/sgx/certification/v4/pckcerts':
    case '/sgx/certification/v3/pckcerts': {
      // POST carries {platformManifest, pceid[, cpusvn, pcesvn]} as JSON (PCS API v3/v4).
      let manifest: string | undefined;
      if (body !== undefined) {
        try {
          const b = JSON.parse(body) as Record<string, string>;
          manifest = b.platformManifest ?? '';
          for (const k of ['pceid', 'cpusvn', 'pcesvn']) if (b[k] !== undefined) q.set(k, b[k]);
        } catch {
          return { status: 400, headers: { 'Error-Code': 'InvalidRequestSyntax' } };
        }
      }
      const many = path.endsWith('pckcerts');
      if (!q.get('pceid') || (!many && !q.get('cpusvn'))) return { status: 400, headers: { 'Error-Code': 'InvalidRequestSyntax' } };
      const p = platformOf(q, manifest);
      if (p === undefined) return { status: 404 };
      const quote = p === 'default' ? ['intel', 'sgx-v3-phala', 'quote.bin'] : p.quote;
      // PCS has certificates for the PCE ID it is asked about or none (404): never another PCE ID's.
      if (q.get('pceid')!.toUpperCase() !== pceIdOf(quote)) return { status: 404, headers: { 'Error-Code': 'NotFound' } };
      return many ? pckCertsAnswer(quote) : pckCertAnswer([...quote]);
    }
    case '/sgx/certification/v4/fmspcs': {
      // PCS's real list, narrowed to the FMSPCs this stand-in has SGX TCB info for (a PCS that knew more
      // would be asked for TCB info it cannot give).
      const platform = q.get('platform');
      const list = JSON.parse(teepot(platform === null ? 'fmspcs_no_filter.json' : 'fmspcs_all_platforms.json').fmspcs_json!) as { fmspc: string; platform: string }[];
      const served = list.filter((e) => (platform === null || platform === 'all' || e.platform === platform) && route(set, '/sgx/certification/v4/tcb', new URLSearchParams({ fmspc: e.fmspc }))?.status === 200);
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(served) };
    }
  }
  const amd = /^\/(vcek|vlek)\/v1\/(Milan|Genoa|Turin)\/(.+)$/.exec(path);
  if (amd) {
    const [, key, product, rest] = amd;
    if (rest === 'cert_chain') {
      const name = product === 'Turin' ? `ask_ark_turin_${key}.pem` : `ask_ark_${product!.toLowerCase()}${key === 'vlek' ? '_vlek' : ''}.pem`;
      return { status: 200, headers: { 'content-type': 'application/x-pem-file' }, body: readFixture('amd', 'roots', 'kds_cert_chain', name) };
    }
    if (key === 'vcek' && product === 'Milan' && /^[0-9a-f]{128}$/i.test(rest!)) {
      const doc = readFixtureJson<{ vcekCert: string }>('amd', 'azure-aci-sidecar', 'uvm_host_amd_certificate.json');
      return { status: 200, headers: { 'content-type': 'application/pkix-cert' }, body: Buffer.from(pemToDer(doc.vcekCert)[0]!) };
    }
  }
  return undefined;
}

export async function startPcsStandin(set: StandinSet = 'teepot'): Promise<PcsStandin> {
  const requests: string[] = [];
  const injected: { part: string; r: StandinResponse }[] = [];
  const overrides = new Map<string, StandinResponse>();
  let delay = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push(`${req.method} ${u.pathname}${u.search}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const answer = () => {
      const i = injected.findIndex((x) => u.pathname.includes(x.part));
      const body = req.method === 'POST' ? Buffer.concat(chunks).toString('utf8') : undefined;
      const over = [...overrides].find(([part]) => `${u.pathname}${u.search}`.includes(part))?.[1];
      const r = i >= 0 ? injected.splice(i, 1)[0]!.r : (over ?? route(set, u.pathname, u.searchParams, body) ?? { status: 404, headers: { 'Error-Code': 'NotFound' } });
      res.writeHead(r.status, { 'Request-ID': Math.random().toString(16).slice(2).padEnd(32, '0'), ...(r.headers ?? {}) });
      if (r.dripMs === undefined) {
        res.end(r.body ?? '');
        return;
      }
      const dripped = Buffer.from(r.body ?? '');
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed || at >= dripped.length) {
          clearInterval(timer);
          res.end();
          return;
        }
        res.write(dripped.subarray(at, at + 1));
        at++;
      }, r.dripMs);
      res.once('close', () => clearInterval(timer));
    };
    req.on('end', () => {
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    count: (part) => requests.filter((r) => r.includes(part)).length,
    inject(part, responses) {
      for (const r of responses) injected.push({ part, r });
    },
    setDelay(ms) {
      delay = ms;
    },
    override(part, response) {
      if (response) overrides.set(part, response);
      else overrides.delete(part);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
