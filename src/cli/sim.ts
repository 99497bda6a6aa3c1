import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadOrCreateSimulatedTee } from '../evidence/simulated/index.js';
import { CliError } from './output.js';
import { writePrivateFile } from './files.js';
import { generateRsaKeyPair } from '../core/keygen.js';

/** `conclave sim evidence`: a request body for `/attest/…`, signed by the simulated TEE of a data dir. */
export function registerSim(program: Command): void {
  const sim = program.command('sim').description('the simulated TEE (development only; trusted by a server only with --simulate)');
  sim
    .command('evidence')
    .description('print the JSON request body for the matching /attest/… route, with the runtime data bound as MAA binds it')
    .requiredOption('--tee <tee>', 'sgx | tdx | snp')
    .requiredOption('--runtime-data <file>', 'runtime data file (JSON, e.g. {"keys":[<JWK>]}); bound through REPORTDATA')
    .option('--runtime-data-type <type>', 'JSON or Binary', 'JSON')
    .option('--mrenclave <hex>', 'SGX MRENCLAVE (32 bytes hex)')
    .option('--mrsigner <hex>', 'SGX MRSIGNER (32 bytes hex)')
    .option('--measurement <hex>', 'SNP launch measurement / TDX MRTD (48 bytes hex)')
    .option('--init-time-data <file>', 'SNP: init-time data bound through HOST_DATA')
    .option('--debug', 'mark the enclave / VM debuggable')
    .option('--data-dir <dir>', 'the server data dir holding the simulated vendor keys', './data')
    .option('--path', 'print only the /attest/… route the body is for')
    .addHelpText(
      'after',
      '\nExample:\n  conclave sim evidence --tee snp --runtime-data keys.json --data-dir ./data > body.json\n  curl --cacert data/tls/ca.pem -H content-type:application/json -d @body.json \\\n    "https://127.0.0.1:8443/attest/SevSnpVm?api-version=2022-08-01"\n',
    )
    .action((o: Record<string, string | boolean | undefined>) => {
      const tee = String(o.tee);
      if (tee !== 'sgx' && tee !== 'tdx' && tee !== 'snp') throw new CliError(`--tee must be sgx, tdx or snp, not "${tee}"`, undefined, 2);
      const type = String(o.runtimeDataType);
      if (type !== 'JSON' && type !== 'Binary') throw new CliError('--runtime-data-type must be JSON or Binary', undefined, 2);
      let runtimeData: Uint8Array;
      let initTimeData: Uint8Array | undefined;
      try {
        runtimeData = readFileSync(String(o.runtimeData));
        if (o.initTimeData) initTimeData = readFileSync(String(o.initTimeData));
      } catch (e) {
        throw new CliError(`cannot read ${(e as NodeJS.ErrnoException).path ?? 'input'}: ${(e as NodeJS.ErrnoException).code}`, 'check the file path', 2);
      }
      if (type === 'JSON') {
        try {
          JSON.parse(Buffer.from(runtimeData).toString('utf8'));
        } catch {
          throw new CliError('--runtime-data is not JSON', 'pass --runtime-data-type Binary for raw bytes', 2);
        }
      }
      let ev: ReturnType<ReturnType<typeof loadOrCreateSimulatedTee>['evidence']>;
      try {
        ev = loadOrCreateSimulatedTee(String(o.dataDir)).evidence({
          tee,
          runtimeData,
          runtimeDataType: type,
          ...(o.mrenclave ? { mrenclave: String(o.mrenclave) } : {}),
          ...(o.mrsigner ? { mrsigner: String(o.mrsigner) } : {}),
          ...(o.measurement ? { measurement: String(o.measurement) } : {}),
          ...(initTimeData ? { initTimeData } : {}),
          debug: o.debug === true,
        });
      } catch (e) {
        throw new CliError((e as Error).message, undefined, 2);
      }
      process.stdout.write(o.path ? `${ev.path}\n` : `${JSON.stringify(ev.body)}\n`);
    });
  sim
    .command('transfer-key')
    .description('make a TEE transfer key pair: the private key goes to a file, the runtime data {"keys":[JWK]} to stdout')
    .requiredOption('--private-key <file>', 'where to write the RSA private key (PEM, mode 0600)')
    .option('--bits <n>', 'RSA modulus size', '2048')
    .addHelpText('after', '\nExample:\n  conclave sim transfer-key --private-key tee.pem > keys.json\n')
    .action((o: { privateKey: string; bits: string }) => {
      const bits = Number(o.bits);
      if (![2048, 3072, 4096].includes(bits)) throw new CliError('--bits must be 2048, 3072 or 4096', undefined, 2);
      const { publicKey, privateKey } = generateRsaKeyPair(bits);
      try {
        writePrivateFile(o.privateKey, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      } catch (e) {
        throw new CliError(`cannot write ${o.privateKey}: ${(e as NodeJS.ErrnoException).code}`, undefined, 2);
      }
      process.stdout.write(`${JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'TpmEphemeralEncryptionKey', key_ops: ['encrypt'] }] })}\n`);
    });
}
