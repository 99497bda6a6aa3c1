// Name resolution of the test, not of the client: `*.localtest` resolves to 127.0.0.1 (as an /etc/hosts
// line would), so a vault named `<name>.vault.localtest:<port>` is reachable and the SDK's challenge
// check runs on a real vault name. Loaded with `node --import`.
import dns from 'node:dns';

const lookup = dns.lookup;
dns.lookup = function localtestLookup(host, options, callback) {
  return lookup.call(this, typeof host === 'string' && host.endsWith('.localtest') ? '127.0.0.1' : host, options, callback);
};
