/**
 * The tpm2-tools vTPM device (what `conclave agent --source azure-vtpm` and the SDK use on a real Azure
 * CVM) against a tpm2-tools replay: stand-in `tpm2_*` programs that answer each command, with the
 * arguments the real tools take, from a software vTPM. The device's commands and files produce an
 * AzureGuest document that Conclave verifies, and its TPM2_RSA_Decrypt opens the sealed answer.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fakeVtpmDevice } from '../../../src/evidence/azure-vtpm/testing.js';
import { loadOrCreateSimulatedTee } from '../../../src/evidence/simulated/index.js';
import { attest } from '../../../src/sdk/attest.js';
import { azureVtpmSource } from '../../../src/sdk/sources/azure-vtpm.js';
import { AZURE_VTPM, tpm2ToolsDevice } from '../../../src/sdk/sources/vtpm-device.js';
import { startTestServer } from '../../helpers/server.js';

const TOOLS = [
  'tpm2_nvwrite',
  'tpm2_nvdefine',
  'tpm2_nvread',
  'tpm2_readpublic',
  'tpm2_pcrread',
  'tpm2_quote',
  'tpm2_createpolicy',
  'tpm2_createprimary',
  'tpm2_certify',
  'tpm2_flushcontext',
  'tpm2_startauthsession',
  'tpm2_policypcr',
  'tpm2_rsadecrypt',
];

type Fake = ReturnType<typeof fakeVtpmDevice>;

/** The value after `flag` in argv (the tools' option syntax), or a failure naming the missing flag. */
function opt(args: readonly string[], flag: string): string {
  const i = args.indexOf(flag);
  if (i < 0 || i + 1 >= args.length) throw new Error(`missing ${flag} in ${args.join(' ')}`);
  return args[i + 1]!;
}

function pcrList(sel: string): number[] {
  const m = /^sha256:(\d+(?:,\d+)*)$/.exec(sel);
  if (!m) throw new Error(`PCR selection ${sel} is not sha256:<list>`);
  return m[1]!.split(',').map(Number);
}

/** One tpm2-tools command against the software vTPM: exit code and stdout. */
async function runTool(fake: Fake, state: { userData?: Uint8Array; defined: boolean; log: string[] }, tool: string, args: string[]): Promise<{ code: number; stdout?: Uint8Array; stderr?: string }> {
  state.log.push(`${tool} ${args.join(' ')}`);
  switch (tool) {
    case 'tpm2_nvdefine':
      assert.deepEqual(args.slice(-1), [AZURE_VTPM.userDataNv]);
      assert.equal(opt(args, '-s'), '64');
      state.defined = true;
      return { code: 0 };
    case 'tpm2_nvwrite':
      assert.equal(args[2], AZURE_VTPM.userDataNv);
      if (!state.defined) return { code: 1, stderr: 'ERROR: Tss2_Sys_NV_Write(0x18B) - tpm:handle(1):the handle is not correct for the use' };
      state.userData = new Uint8Array(readFileSync(opt(args, '-i')));
      return { code: 0 };
    case 'tpm2_nvread': {
      const index = args[2];
      if (index === AZURE_VTPM.hclReportNv) return { code: 0, stdout: await fake.readHclReport(state.userData ?? new Uint8Array(64)) };
      return { code: 1, stderr: `ERROR: NV index ${index} not defined` };
    }
    case 'tpm2_readpublic': {
      assert.equal(opt(args, '-f'), 'tss');
      const c = opt(args, '-c');
      const area = c === AZURE_VTPM.akHandle ? await fake.readAkPublic() : (await fake.createEphemeralKey(JSON.parse(readFileSync(c, 'utf8'))))!.publicArea;
      writeFileSync(opt(args, '-o'), area);
      return { code: 0 };
    }
    case 'tpm2_pcrread': {
      const values = await fake.readPcrs(pcrList(args[0]!));
      writeFileSync(opt(args, '-o'), Buffer.concat(values));
      return { code: 0 };
    }
    case 'tpm2_quote': {
      assert.equal(opt(args, '-c'), AZURE_VTPM.akHandle);
      assert.equal(opt(args, '-g'), 'sha256');
      assert.equal(opt(args, '-f'), 'plain');
      const q = await fake.quote(pcrList(opt(args, '-l')), args.includes('-q') ? Buffer.from(opt(args, '-q'), 'hex') : new Uint8Array(0));
      writeFileSync(opt(args, '-m'), q.message);
      writeFileSync(opt(args, '-s'), q.signature);
      return { code: 0 };
    }
    case 'tpm2_createpolicy':
      assert.ok(args.includes('--policy-pcr'));
      writeFileSync(opt(args, '-L'), JSON.stringify(pcrList(opt(args, '-l'))));
      return { code: 0 };
    case 'tpm2_createprimary':
      assert.equal(opt(args, '-C'), 'n', 'the ephemeral key lives in the null hierarchy');
      assert.match(opt(args, '-a'), /decrypt/);
      assert.doesNotMatch(opt(args, '-a'), /sign/);
      writeFileSync(opt(args, '-c'), readFileSync(opt(args, '-L')));
      return { code: 0 };
    case 'tpm2_certify': {
      assert.equal(opt(args, '-C'), AZURE_VTPM.akHandle);
      assert.equal(opt(args, '-f'), 'plain');
      const key = (await fake.createEphemeralKey(JSON.parse(readFileSync(opt(args, '-c'), 'utf8'))))!;
      writeFileSync(opt(args, '-o'), key.certifyInfo);
      writeFileSync(opt(args, '-s'), key.signature);
      return { code: 0 };
    }
    case 'tpm2_flushcontext':
    case 'tpm2_policypcr':
      return { code: 0 };
    case 'tpm2_startauthsession':
      assert.ok(args.includes('--policy-session'));
      writeFileSync(opt(args, '-S'), 'session');
      return { code: 0 };
    case 'tpm2_rsadecrypt': {
      assert.equal(opt(args, '-s'), 'rsaes');
      assert.match(opt(args, '-p'), /^session:/);
      const pcrs = JSON.parse(readFileSync(opt(args, '-c'), 'utf8'));
      try {
        writeFileSync(opt(args, '-o'), await fake.decryptWithEphemeralKey(pcrs, new Uint8Array(readFileSync(args[args.length - 1]!))));
      } catch (e) {
        return { code: 1, stderr: (e as Error).message };
      }
      return { code: 0 };
    }
    default:
      return { code: 127, stderr: `${tool}: not replayed` };
  }
}

/**
 * Writes stand-in `tpm2_*` executables into a temp dir: bash scripts (no Node start-up per command, about
 * 0.15 s of CPU each) that send their argv to the replay on 127.0.0.1:`port` (bash's /dev/tcp) as
 * NUL-terminated fields (their count, the tool, the arguments) and answer with its reply: a line with the
 * exit code, a line with stderr (backslash-escaped), then stdout's bytes to the end.
 */
function standInTools(port: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-tpm2-replay-'));
  for (const t of TOOLS) {
    const p = join(dir, t);
    writeFileSync(
      p,
      `#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/${port} || exit 70
printf '%s\\0' "$#" ${t} "$@" >&3
IFS= read -r code <&3 || exit 70
IFS= read -r err <&3
[ -z "$err" ] || printf '%b\\n' "$err" >&2
cat <&3
exit "$code"
`,
    );
    chmodSync(p, 0o755);
  }
  return dir;
}

/** The replay's end of the stand-ins' protocol (see standInTools). */
function replayServer(handle: (tool: string, args: string[]) => Promise<{ code: number; stdout?: Uint8Array; stderr?: string }>): Server {
  return createServer((socket) => {
    let buffered = Buffer.alloc(0);
    let answered = false;
    socket.on('error', () => undefined); // a stand-in that died: the device sees its exit status
    socket.on('data', (c: Buffer) => {
      buffered = Buffer.concat([buffered, c]);
      const fields: string[] = [];
      for (let at = 0, nul = buffered.indexOf(0); nul >= 0; at = nul + 1, nul = buffered.indexOf(0, at)) fields.push(buffered.subarray(at, nul).toString('utf8'));
      if (answered || fields.length < 2 || fields.length < Number(fields[0]) + 2) return;
      answered = true;
      const [, tool, ...args] = fields;
      handle(tool!, args)
        .catch((e: Error): { code: number; stdout?: Uint8Array; stderr?: string } => ({ code: 2, stderr: `replay: ${e.message}` }))
        .then((r) => {
          const err = (r.stderr ?? '').replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
          socket.end(Buffer.concat([Buffer.from(`${r.code}\n${err}\n`), r.stdout ?? new Uint8Array(0)]));
        });
    });
  });
}

describe('tpm2-tools vTPM device against a tpm2-tools replay', () => {
  test('AzureGuest evidence through the tpm2_* commands verifies; the sealed answer opens with tpm2_rsadecrypt', async () => {
    const server = await startTestServer({ simulate: true });
    const fake = fakeVtpmDevice(loadOrCreateSimulatedTee(server.dataDir).snp);
    const state = { defined: false, log: [] as string[] };
    const emu = replayServer((tool, args) => runTool(fake, state, tool, args));
    await new Promise<void>((r) => emu.listen(0, '127.0.0.1', () => r()));
    const dir = standInTools((emu.address() as AddressInfo).port);
    const logFile = join(dir, 'binary_bios_measurements');
    writeFileSync(logFile, await fake.readEventLog());
    try {
      const device = tpm2ToolsDevice({ toolsDir: dir, eventLogPath: logFile });
      const source = azureVtpmSource({ device, certificates: async () => fake.chainPem() });
      const ca = readFileSync(server.caPath, 'utf8');
      const token = await attest({ attestationUrl: server.url, source, runtimeData: new TextEncoder().encode('{"nonce":"7"}'), ca });
      const c = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
      assert.equal(c['x-ms-attestation-type'], 'azurevm');
      assert.equal(c['x-ms-isolation-tee']['x-ms-compliance-status'], 'azure-compliant-cvm');
      assert.equal(c['x-ms-runtime'].keys[0].kid, 'TpmEphemeralEncryptionKey');
      assert.equal(c.secureboot, true, 'the event log read from the file replays to the quoted PCRs');
      // The first write to the user-data index defined it (tpm2_nvdefine), as on a fresh VM.
      const tools = state.log.map((l) => l.split(' ')[0]);
      for (const t of ['tpm2_nvdefine', 'tpm2_nvread', 'tpm2_quote', 'tpm2_certify', 'tpm2_rsadecrypt']) assert.ok(tools.includes(t), `${t} was run`);
      assert.ok(tools.indexOf('tpm2_nvdefine') < tools.indexOf('tpm2_nvread'));

      // After a PCR changes, the recreated key no longer opens an answer sealed to the old state.
      fake.tpm.measure(7, 4, Buffer.from('late'));
      await assert.rejects(device.decryptWithEphemeralKey([0, 1, 2, 3, 4, 5, 6, 7], new Uint8Array(256)), (e: Error) => /tpm2_rsadecrypt failed/.test(e.message));
    } finally {
      emu.close();
      rmSync(dir, { recursive: true, force: true });
      await server.stop();
    }
  });
});
