import type { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../config/config.js';
import { REDACT_PATHS, startServer } from '../main.js';
import { CliError } from './output.js';

/** `conclave serve`: flags override env (CONCLAVE_*), which override the config file, which overrides defaults. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the vault, attestation and collateral services over HTTPS')
    .option('--data-dir <dir>', 'data directory (SQLite db, TLS cert, master key, admin credential)', undefined)
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <n>', 'listen port; 0 picks a free port (default 8443)')
    .option('--db <url>', 'store: sqlite:PATH (default sqlite:<data-dir>/conclave.db) or postgres://…')
    .option('--config <file>', 'JSON or YAML config file (keys as in docs/configuration.md)')
    .option('--services <list>', 'comma-separated subset of vault,attestation,collateral')
    .option('--simulate', 'trust the simulated TEE root (development only; tokens say so)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--public-url <url>', 'public base URL when behind a proxy (token issuer, kid URLs)')
    .option('--body-limit <bytes>', 'request body limit in bytes (default 1048576)')
    .option('--request-timeout <ms>', 'longest a client may take to send a whole request; headers and the TLS handshake get at most 60000 of it (default 300000)')
    .option('--token-lifetime <seconds>', 'attestation token lifetime (default 28800)')
    .option('--hsm <spec>', 'PKCS#11 key protection: pkcs11:module=PATH;token=LABEL;pin-source=file:PATH|env:VAR')
    .option('--collateral-mode <mode>', 'lazy|request|offline (default lazy)')
    .option('--upstream-intel <url>', 'Intel PCS or another PCCS/THIM base URL')
    .option('--intel-api-key <key>', 'Intel PCS subscription key')
    .option('--pccs-admin-token-hash <sha512>', 'SHA-512 (hex) of the PCCS admin-token (PCCS AdminTokenHash)')
    .option('--pccs-user-token-hash <sha512>', 'SHA-512 (hex) of the PCCS user-token for platform registration (PCCS UserTokenHash)')
    .option('--upstream-amd <url>', 'AMD KDS (or compatible) base URL')
    .option('--upstream-nvidia-rim <url>', 'NVIDIA RIM service (or a compatible mirror, e.g. another Conclave) base URL')
    .option('--upstream-nvidia-ocsp <url>', 'NVIDIA OCSP responder URL')
    .option('--upstream-timeout <ms>', 'total deadline of one upstream collateral request, connect to last byte (default 15000)')
    .option('--collateral-freshness <policy>', 'azure (past-nextUpdate collateral reported, MAA default) or strict (refused, naming the item)')
    .option('--snp-crl <policy>', 'if-available (SEV-SNP attested without an AMD CRL that cannot be had, token says so; default) or required (refused)')
    .option('--db-pool-size <n>', 'PostgreSQL connection pool size (default 10)')
    .option('--log-batch-ms <ms>', 'transparency log: sequence a batch every <ms> (default 25; inclusion latency bound)')
    .option('--log-lease-ms <ms>', 'transparency log: sequencer lease; a dead holder is replaced after it (default 3000)')
    .option('--trusted-authority <url...>', 'additional attestation authorities trusted for key release')
    .option('--isolated', 'isolated mode: attestation policies must be signed')
    .option('--policy-certificate <pem-file...>', 'policy-management certificates registered at start (isolated mode needs one)')
    .option('--tpm-aik-root <pem-file...>', 'TPM AIK CA roots: AIK certificates chaining to one are aikValidated (/attest/Tpm)')
    .option('--oidc-issuer <url>', 'external OpenID Connect issuer whose bearer tokens are accepted (principal id <issuer>#<sub>)')
    .option('--oidc-audience <aud>', 'audience external tokens must carry (required with --oidc-issuer)')
    .option('--oidc-jwks-uri <url>', "the issuer's JWKS URL (default: discovered from <issuer>/.well-known/openid-configuration)")
    .option('--oidc-admin-subject <sub...>', 'external token subjects (sub) that are administrators')
    .option('--recoverable-days <n>', 'vault soft delete: days a deleted key stays recoverable, 7-90 (default 90)')
    .option('--purge-protection', 'vault purge protection: deleted keys are purged only at their scheduled purge date')
    .option('--maintenance-interval <seconds>', 'seconds between runs of scheduled rotations and purges; 0 = off (default 60)')
    .option('--backup-dir <dir>', 'where full vault backups go (file:///… URIs inside it; default <data-dir>/backups)')
    .option('--release-cert <pem>', "operator's release-signing certificate chain (PEM, leaf first; SAN = the vault host)")
    .option('--release-key <pem>', "the release-signing certificate's private key (PEM, PKCS#8)")
    .option('--oidc-console-client-id <id>', "the web console's client id at the OIDC issuer (public client, PKCE; redirect URI <public-url>/console/api/oidc/callback)")
    .option('--oidc-console-scope <scopes>', 'scopes the console asks the OIDC issuer for (default openid; the access token must carry --oidc-audience)')
    .option('--oidc-ca <file>', "PEM CA trusted for the OIDC issuer's HTTPS only (a private CA; not trusted for release authorities)")
    .addHelpText('after', '\nExample:\n  conclave serve --data-dir ./data --port 8443 --simulate\n')
    .action(async (flags: Record<string, unknown>) => {
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig({ flags, env: process.env });
      } catch (e) {
        throw new CliError((e as Error).message, 'check the flag, CONCLAVE_* variable or config key named above', 2);
      }
      const logger = pino({ level: config.logLevel, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2));
      const server = await startServer(config, { logger });
      const out = process.stdout;
      out.write(`conclave listening on ${server.url}\n`);
      out.write(`  admin credential: ${server.adminPath}\n`);
      out.write(`  TLS CA certificate: ${server.caPath}   (export NODE_EXTRA_CA_CERTS=${server.caPath})\n`);
      out.write(`  services: ${config.services.join(', ')}${config.simulate ? '   [simulated TEE trusted: development only]' : ''}\n`);
      out.write(`  try: curl --cacert ${server.caPath} ${server.url}/healthz\n`);
      if (config.simulate) {
        out.write(`  next: export PATH="$PWD/bin:$PATH"; conclave demo --url ${server.url} --data-dir ${config.dataDir}\n`);
        out.write('        (the whole attest → release story with a simulated SEV-SNP VM and SGX enclave; README.md has the quick tour)\n');
      }
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down: finishing in-flight requests');
        server.close().then(
          () => process.exit(0),
          (e) => {
            logger.error({ err: e }, 'error during shutdown');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
