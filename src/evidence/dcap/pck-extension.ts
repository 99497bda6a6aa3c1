import { TAG, type Tlv, children, content, oid, parseDer, smallInt } from '../../core/der.js';
import { isConclaveError, fail } from '../../core/errors.js';
import type { Certificate } from '../../core/x509.js';

/** Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1; evidence-and-collateral §2.2). */
export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';

const OID_PPID = `${SGX_EXTENSION_OID}.1`;
const OID_TCB = `${SGX_EXTENSION_OID}.2`;
const OID_PCEID = `${SGX_EXTENSION_OID}.3`;
const OID_FMSPC = `${SGX_EXTENSION_OID}.4`;
const OID_SGX_TYPE = `${SGX_EXTENSION_OID}.5`;
const OID_PLATFORM_INSTANCE_ID = `${SGX_EXTENSION_OID}.6`;
const OID_CONFIGURATION = `${SGX_EXTENSION_OID}.7`;

export type SgxType = 'Standard' | 'Scalable' | 'ScalableWithIntegrity';
const SGX_TYPES: readonly SgxType[] = ['Standard', 'Scalable', 'ScalableWithIntegrity'];

/** The fields of the SGX extension that verification uses; hex is lowercase. */
export interface PckSgxExtension {
  readonly ppid: string;
  /** SGX TCB components comp01..comp16 (OIDs …13.1.2.1 – …2.16), the values TCB matching compares. */
  readonly sgxTcbComponents: readonly number[];
  readonly pcesvn: number;
  /** Raw CPUSVN (…2.18); informative only, TCB matching uses the components. */
  readonly cpusvn: string;
  readonly pceId: string;
  readonly fmspc: string;
  readonly sgxType: SgxType;
  readonly platformInstanceId?: string;
  readonly configuration?: { readonly dynamicPlatform?: boolean; readonly cachedKeys?: boolean; readonly smtEnabled?: boolean };
}

function octets(t: Tlv, field: string, size?: number): string {
  if (t.tag !== TAG.OCTET_STRING) throw fail('quote.pck_extension_invalid', `SGX extension ${field} is not an OCTET STRING`, { field });
  const c = content(t);
  if (size !== undefined && c.byteLength !== size) {
    throw fail('quote.pck_extension_invalid', `SGX extension ${field} has ${c.byteLength} bytes, expected ${size}`, { field, size: c.byteLength });
  }
  return Buffer.from(c).toString('hex');
}

/** The {OID, value} entries of a SEQUENCE, each OID once (QVL takes each entry once). */
function pairs(seq: Tlv): Map<string, Tlv> {
  const out = new Map<string, Tlv>();
  for (const pair of children(seq)) {
    const [k, v] = children(pair);
    if (!k || !v) throw fail('quote.pck_extension_invalid', 'SGX extension entry is not an {OID, value} pair');
    const id = oid(k);
    if (out.has(id)) throw fail('quote.pck_extension_invalid', `SGX extension entry ${id} appears twice`, { oid: id });
    out.set(id, v);
  }
  return out;
}

/** Parses the SGX extension of a PCK certificate; every defect is `quote.pck_extension_invalid`. */
export function parsePckSgxExtension(cert: Certificate): PckSgxExtension {
  const ext = cert.extensions.get(SGX_EXTENSION_OID);
  if (!ext) throw fail('quote.pck_extension_invalid', 'PCK certificate has no SGX extension', { oid: SGX_EXTENSION_OID });
  try {
    const top = pairs(parseDer(ext.value, 'SGX extension'));
    const need = (o: string, field: string): Tlv => {
      const v = top.get(o);
      if (!v) throw fail('quote.pck_extension_invalid', `SGX extension lacks ${field}`, { field, oid: o });
      return v;
    };
    const tcb = pairs(need(OID_TCB, 'TCB'));
    const sgxTcbComponents: number[] = [];
    for (let i = 1; i <= 16; i++) {
      const v = tcb.get(`${OID_TCB}.${i}`);
      if (!v) throw fail('quote.pck_extension_invalid', `SGX extension TCB lacks comp${String(i).padStart(2, '0')}`, { field: `sgxtcbcomp${i}` });
      sgxTcbComponents.push(smallInt(v));
    }
    const pcesvnT = tcb.get(`${OID_TCB}.17`);
    const cpusvnT = tcb.get(`${OID_TCB}.18`);
    if (!pcesvnT || !cpusvnT) throw fail('quote.pck_extension_invalid', 'SGX extension TCB lacks PCESVN or CPUSVN', { field: 'pcesvn/cpusvn' });
    const sgxTypeT = need(OID_SGX_TYPE, 'SGX Type');
    const sgxType = SGX_TYPES[smallInt(sgxTypeT)];
    if (!sgxType) throw fail('quote.pck_extension_invalid', 'SGX extension has an unknown SGX Type', { field: 'sgxType' });
    const instance = top.get(OID_PLATFORM_INSTANCE_ID);
    const config = top.get(OID_CONFIGURATION);
    let configuration: PckSgxExtension['configuration'];
    if (config && config.tag === TAG.SEQUENCE) {
      const c = pairs(config);
      const flag = (n: number): boolean | undefined => {
        const v = c.get(`${OID_CONFIGURATION}.${n}`);
        return v && v.tag === TAG.BOOLEAN ? content(v)[0] !== 0 : undefined;
      };
      configuration = { dynamicPlatform: flag(1), cachedKeys: flag(2), smtEnabled: flag(3) };
    }
    return {
      ppid: octets(need(OID_PPID, 'PPID'), 'PPID', 16),
      sgxTcbComponents,
      pcesvn: smallInt(pcesvnT),
      cpusvn: octets(cpusvnT, 'CPUSVN', 16),
      pceId: octets(need(OID_PCEID, 'PCE-ID'), 'PCE-ID', 2),
      fmspc: octets(need(OID_FMSPC, 'FMSPC'), 'FMSPC', 6),
      sgxType,
      ...(instance && instance.tag === TAG.OCTET_STRING ? { platformInstanceId: octets(instance, 'Platform Instance ID') } : {}),
      ...(configuration ? { configuration } : {}),
    };
  } catch (e) {
    if (isConclaveError(e, 'quote.pck_extension_invalid')) throw e;
    throw fail('quote.pck_extension_invalid', 'SGX extension of the PCK certificate cannot be decoded', { cause: isConclaveError(e) ? e.code : 'decode' }, e);
  }
}
