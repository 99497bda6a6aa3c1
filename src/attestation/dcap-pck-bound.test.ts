/**
 * Bounded work (attack): the PCK chain of a DCAP quote (its type-5 certification data, alone or inside the
 * type-6 QE report certification data) is the caller's to write: nothing signs it. A chain that verifies
 * holds the PCK, the PCK CA and at most the root; a quote carrying more is refused (quote.pck_chain_invalid)
 * before any certificate is decoded or parsed, on every DCAP route, whichever root the chain names (the
 * simulated one here, whose chain the service reads before it knows which collateral to use). Before, every
 * block was decoded and parsed first: 1 284 certificates (about 700 kB in one request) cost about 44 ms of
 * the event loop before the root was checked.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { b64url } from '../core/bytes.js';
import { isConclaveError } from '../core/errors.js';
import { derToPem, pemToDer } from '../core/x509.js';
import { encodeQuote, parseQuote } from '../evidence/dcap/index.js';
import { loadOrCreateSimulatedTee } from '../evidence/simulated/index.js';
import { DEFAULT_POLICIES } from './policy/index.js';
import { draftPolicyService } from './testing.js';

const dir = mkdtempSync(join(tmpdir(), 'conclave-dcap-pck-bound-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const simulated = loadOrCreateSimulatedTee(dir);

const serviceWith = (sim: typeof simulated | undefined) =>
  draftPolicyService({
    collateral: {
      async getQuoteCollateral() {
        throw new Error('the collateral is never asked for: the chain is refused first');
      },
    } as never,
    ...(sim ? { simulated: sim } : {}),
  });

/** The simulated TEE's quote with `extra` appended to its PCK chain's PEM text. */
function quoteWithChain(tee: 'sgx' | 'tdx', extra: (chain: Uint8Array[]) => string): string {
  const quote = parseQuote(Buffer.from(simulated.evidence({ tee, runtimeData: new Uint8Array(8) }).body.quote as string, 'base64url'));
  const pem = Buffer.from(quote.signatureData.certificationData.data).toString('latin1').replace(/\0+$/, '');
  const data = new Uint8Array(Buffer.from(`${pem}${extra(pemToDer(pem))}\0`, 'latin1'));
  return b64url(encodeQuote({ ...quote, signatureData: { ...quote.signatureData, certificationData: { ...quote.signatureData.certificationData, data } } }));
}

const JUNK = '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n';

describe('a DCAP quote whose PCK chain holds more certificates than a chain that verifies is refused before any is parsed', () => {
  for (const [type, tee] of [
    ['SgxEnclave', 'sgx'],
    ['OpenEnclave', 'sgx'],
    ['TdxVm', 'tdx'],
  ] as const) {
    test(`${type}: 400 filler blocks, or the chain's own certificates repeated, after the chain: quote.pck_chain_invalid naming the bound`, async () => {
      for (const [label, extra] of [
        ['400 undecodable blocks', () => JUNK.repeat(400)],
        ['the leaf again 10 times', (chain: Uint8Array[]) => derToPem(chain[0]!).repeat(10)],
        ['one certificate more than leaf, PCK CA and root', (chain: Uint8Array[]) => derToPem(chain[chain.length - 1]!)],
      ] as const) {
        const quote = quoteWithChain(tee, extra);
        for (const [trust, svc] of [
          ['simulated root trusted', serviceWith(simulated)],
          ['no simulated root', serviceWith(undefined)],
        ] as const) {
          await assert.rejects(
            svc.attest(type, { [type === 'OpenEnclave' ? 'report' : 'quote']: quote, draftPolicyForAttestation: DEFAULT_POLICIES[type] }),
            (e) => isConclaveError(e, 'quote.pck_chain_invalid') && e.detail?.max === 3,
            `${type}, ${label}, ${trust}`,
          );
        }
      }
    });
  }

  test('a PCK chain padded past 32 KiB (text outside its PEM blocks) is refused before it is read or remembered: quote.pck_chain_invalid naming the bound', async () => {
    // The service remembers what a chain that verified says, by its text (up to 1 024 chains): padding a
    // public PCK chain with distinct text made each anonymous request leave its ~700 kB there.
    for (const [type, tee] of [
      ['SgxEnclave', 'sgx'],
      ['TdxVm', 'tdx'],
    ] as const) {
      for (const padding of [' '.repeat(40_000), `${'x'.repeat(700_000)}\n`]) {
        await assert.rejects(
          serviceWith(simulated).attest(type, { quote: quoteWithChain(tee, () => padding), draftPolicyForAttestation: DEFAULT_POLICIES[type] }),
          (e) => isConclaveError(e, 'quote.pck_chain_invalid') && e.detail?.maxBytes === 32 * 1024,
          `${type}, ${padding.length} characters of padding`,
        );
      }
    }
  });

  test('the control: the chain as the TEE wrote it attests', async () => {
    const { claims } = await serviceWith(simulated).attest('SgxEnclave', { quote: quoteWithChain('sgx', () => ''), draftPolicyForAttestation: DEFAULT_POLICIES.SgxEnclave });
    assert.equal(claims['x-ms-attestation-type'], 'sgx');
  });
});
