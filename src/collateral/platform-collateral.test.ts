import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAppraisalPolicy } from './appraisal-policy.js';
import { readPlatformCollateral } from './platform-collateral.js';

const at = new Date('2025-06-20T00:00:00Z');
const minimal = (collaterals: Record<string, unknown>, platforms: unknown[] = []) => ({ platforms, collaterals: { version: 4, pck_certs: [], tcbinfos: [], certificates: {}, ...collaterals } });

describe('PCCSAdminTool collateral file: shape checks before any verification', () => {
  test('an empty but well-formed file yields nothing to store', () => {
    assert.deepEqual(readPlatformCollateral(minimal({}), 'v4', at), { items: [], platforms: [] });
  });

  const bad: [string, unknown][] = [
    ['not an object', 'x'],
    ['no collaterals', { platforms: [] }],
    ['a v3 file on the v4 route', minimal({ version: 3 })],
    ['pck_certs missing', { platforms: [], collaterals: { version: 4, tcbinfos: [], certificates: {} } }],
    ['a platform without pce_id', minimal({}, [{ qe_id: 'AA' }])],
    ['a platform with a 3-byte PCESVN', minimal({}, [{ qe_id: 'AA', pce_id: '0000', pce_svn: '0D0000' }])],
    ['a set with no certificates', minimal({ pck_certs: [{ qe_id: 'AA', pce_id: '0000', enc_ppid: '', certs: [] }] })],
    ['a set of "Not available" only', minimal({ pck_certs: [{ qe_id: 'AA', pce_id: '0000', enc_ppid: '', certs: [{ tcb: Object.fromEntries([...Array.from({ length: 16 }, (_, i) => [`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`, 0]), ['pcesvn', 0]]), tcbm: '00'.repeat(18), cert: 'Not available' }] }] })],
    ['a TCB info without fmspc', minimal({ tcbinfos: [{ sgx_tcbinfo: {} }] })],
    ['an identity that is not text', minimal({ qeidentity: { enclaveIdentity: {} } })],
    ['a CRL that is not hex', minimal({ pckcacrl: { processorCrl: 42 } })],
    // Read for PCK selection before anything is verified: these were TypeErrors (500), not a typed 400.
    ['a TCB info with a null TCB level', minimal({ tcbinfos: [{ fmspc: '00906ED50000', sgx_tcbinfo: { tcbInfo: { tcbLevels: [null] } } }] })],
    ['a TCB info with a null SGX TCB component', minimal({ tcbinfos: [{ fmspc: '00906ED50000', sgx_tcbinfo: { tcbInfo: { tcbLevels: [{ tcb: { sgxtcbcomponents: [null] } }] } } }] })],
  ];
  for (const [name, doc] of bad) {
    test(`refuses ${name} with request.invalid or collateral.malformed`, () => {
      assert.throws(() => readPlatformCollateral(doc, 'v4', at), (e: { code?: string }) => e.code === 'request.invalid' || e.code === 'collateral.malformed');
    });
  }

  test('an item that is well-formed but not Intel-signed is an integrity error (PCCS 460)', () => {
    const fake = JSON.stringify({ enclaveIdentity: { id: 'QE', version: 2, issueDate: '2025-06-01T00:00:00Z', nextUpdate: '2025-07-01T00:00:00Z', tcbEvaluationDataNumber: 17 }, signature: '00'.repeat(64) });
    assert.throws(() => readPlatformCollateral(minimal({ qeidentity: fake }), 'v4', at), { code: 'collateral.integrity_error' });
  });
});

describe('appraisal policy uploads', () => {
  const jwt = (payload: unknown) => `eyJhbGciOiJFUzM4NCJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;
  const policy = (classId: string) => jwt({ policy_payload: JSON.stringify({ policy_array: [{ environment: { class_id: classId } }] }) });

  test('types by class id (SGX 0, TDX 1.0 1, TDX 1.5 2); a TD QE policy beside a platform policy is fine', () => {
    assert.equal(parseAppraisalPolicy({ policy: policy('3123EC35-8D38-4EA5-87A5-D6C48B567570'), is_default: true, fmspc: '00a067110000' }).type, 0);
    assert.equal(parseAppraisalPolicy({ policy: policy('9eec018b-7481-4b1c-8e1a-9f7c0c8c777f'), is_default: false, fmspc: '00806F050000' }).fmspc, '00806F050000');
    const both = jwt({ policy_payload: JSON.stringify({ policy_array: [{ environment: { class_id: '3769258c-75e6-4bc7-8d72-d2b0e224cad2' } }, { environment: { class_id: 'f708b97f-0fb2-4e6b-8b03-8a5bcd1221d3' } }] }) });
    assert.equal(parseAppraisalPolicy({ policy: both, is_default: true, fmspc: '90C06F000000' }).type, 2);
  });

  for (const [name, body] of [
    ['a TD QE policy alone', { policy: policy('3769258c-75e6-4bc7-8d72-d2b0e224cad2'), is_default: true, fmspc: '90C06F000000' }],
    ['an unknown class id', { policy: policy('00000000-0000-0000-0000-000000000000'), is_default: true, fmspc: '90C06F000000' }],
    ['a payload without policy_payload', { policy: jwt({}), is_default: true, fmspc: '90C06F000000' }],
    ['two-part JWT', { policy: 'a.b', is_default: true, fmspc: '90C06F000000' }],
    ['no is_default', { policy: policy('3123ec35-8d38-4ea5-87a5-d6c48b567570'), fmspc: '90C06F000000' }],
  ] as const) {
    test(`refuses ${name}`, () => {
      assert.throws(() => parseAppraisalPolicy(body), { code: 'request.invalid' });
    });
  }
});
