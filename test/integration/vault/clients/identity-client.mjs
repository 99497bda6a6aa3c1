// A workload as Azure's samples write it: the stock credential, configured by the environment alone
// (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST; NODE_EXTRA_CA_CERTS for the
// private CA), then one key operation, with the SDK's challenge-resource check on. argv[2]: the vault URL
// (a name under *.vault.localtest with its port); argv[3]: "default" (DefaultAzureCredential) or "secret"
// (ClientSecretCredential from the same variables). Prints one JSON line.
import { ClientSecretCredential, DefaultAzureCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';

const [vaultUrl, kind, keyName] = process.argv.slice(2);
const credential =
  kind === 'default'
    ? new DefaultAzureCredential()
    : new ClientSecretCredential(process.env.AZURE_TENANT_ID, process.env.AZURE_CLIENT_ID, process.env.AZURE_CLIENT_SECRET, kind === 'secret-no-discovery' ? { disableInstanceDiscovery: true } : {});
try {
  const client = new KeyClient(vaultUrl, credential, { retryOptions: { maxRetries: 0 } });
  const key = await client.createEcKey(keyName, { curve: 'P-256' });
  const got = await client.getKey(keyName);
  console.log(JSON.stringify({ ok: true, kid: key.id, same: got.id === key.id }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.message ?? e).slice(0, 2000) }));
}
