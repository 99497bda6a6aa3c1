"""The official Python SDKs (Debian python3-azure: azure-keyvault-keys 4.8, azure-keyvault-administration 4.3,
azure-identity 1.13) against Conclave, unchanged and with their checks on.

The credential is DefaultAzureCredential configured by the environment alone (AZURE_TENANT_ID=adfs,
AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST, REQUESTS_CA_BUNDLE for the private CA). The
vault is https://myvault.vault.localtest:<port>, so the SDK's challenge-resource check (host and port)
runs; this process resolves *.localtest to 127.0.0.1 (name resolution of the test, not the SDK). The test
harness (CONTROL, plain HTTP on 127.0.0.1) moves the server's injected clock, runs its scheduled work,
mints attestation tokens and starts fresh servers for restore. Prints one JSON line of facts at the end;
any failed expectation raises.
"""
import json
import os
import socket
import sys
import urllib.request
import uuid

_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".localtest"):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: E402
from azure.identity import ClientSecretCredential, DefaultAzureCredential  # noqa: E402
from azure.keyvault.administration import (  # noqa: E402
    KeyVaultAccessControlClient,
    KeyVaultBackupClient,
    KeyVaultDataAction,
    KeyVaultPermission,
    KeyVaultRoleScope,
)
from azure.keyvault.keys import (  # noqa: E402
    KeyClient,
    KeyReleasePolicy,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
)

CONTROL = os.environ["CONCLAVE_TEST_CONTROL"]
VAULT = os.environ["CONCLAVE_TEST_VAULT"]
BACKUP_CONTAINER = os.environ["CONCLAVE_TEST_BACKUP_CONTAINER"]
facts = {}


def control(path):
    with urllib.request.urlopen(f"{CONTROL}{path}", timeout=120) as r:
        return json.loads(r.read().decode())


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def fails_with(status, fn, what):
    try:
        fn()
    except HttpResponseError as e:
        expect(e.status_code == status, f"{what}: expected {status}, got {e.status_code}: {e.message}")
        return e
    raise AssertionError(f"{what}: expected HTTP {status}, it succeeded")


DAY = 86400


def advance(seconds):
    """Moves the server's clock and runs its scheduled work. Tokens issued before expire on the server's
    clock, not on ours: a new credential (a new token cache) gets a fresh one."""
    global credential, keys
    report = control(f"/advance?seconds={seconds}")
    credential = DefaultAzureCredential()
    keys = KeyClient(VAULT, credential)
    return report


credential = DefaultAzureCredential()
keys = KeyClient(VAULT, credential)

# ── rotation policy: get/update, a rotation that happens (injected clock), the error paths ──
key = keys.create_ec_key("py-rotating", curve="P-256")
default_policy = keys.get_key_rotation_policy("py-rotating")
expect(default_policy.lifetime_actions[0].action == KeyRotationPolicyAction.notify, "default policy notifies")
policy = keys.update_key_rotation_policy(
    "py-rotating",
    KeyRotationPolicy(),
    lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")],
    expires_in="P90D",
)
expect(policy.expires_in == "P90D", f"expires_in round-trips: {policy.expires_in}")
expect(policy.lifetime_actions[0].time_after_create == "P30D", "trigger round-trips")
expect(keys.get_key_rotation_policy("py-rotating").expires_in == "P90D", "policy is stored")
report = advance(31 * DAY)
expect(report["rotated"] == ["py-rotating"], f"the rotator rotated: {report}")
versions = list(keys.list_properties_of_key_versions("py-rotating"))
expect(len(versions) == 2, f"two versions after one rotation: {len(versions)}")
latest = keys.get_key("py-rotating")
expect(latest.properties.version != key.properties.version, "a new latest version")
lifetime = latest.properties.expires_on - latest.properties.created_on
expect(lifetime.total_seconds() == 90 * DAY, f"exp from expiryTime: {lifetime}")
facts["rotation"] = {"versions": len(versions), "lifetime_days": lifetime.days}
fails_with(
    400,
    lambda: keys.update_key_rotation_policy(
        "py-rotating", KeyRotationPolicy(), lifetime_actions=[KeyRotationLifetimeAction("Rotate", time_after_create="thirty days")]
    ),
    "bad duration",
)
fails_with(
    400,
    lambda: keys.update_key_rotation_policy("py-rotating", KeyRotationPolicy(), lifetime_actions=[KeyRotationLifetimeAction("Explode", time_after_create="P30D")]),
    "unknown action",
)

# ── case-insensitive names ──
keys.create_ec_key("PyMixedCase", curve="P-256")
found = keys.get_key("pymixedcase")
expect(found.name == "PyMixedCase", f"found in any case, stored as created: {found.name}")
facts["case_insensitive"] = found.name

# ── soft delete with automatic purge (the server runs with --recoverable-days 7) ──
keys.create_ec_key("py-purged", curve="P-256")
deleted = keys.begin_delete_key("py-purged").result()
expect(deleted.recovery_id.endswith("/deletedkeys/py-purged"), "deleted key")
expect((deleted.scheduled_purge_date - deleted.deleted_date).days == 7, "scheduled 7 days later")
expect(keys.get_deleted_key("py-purged").name == "py-purged", "deleted key is there before the date")
report = advance(8 * DAY)
expect("py-purged" in report["purged"], f"purged automatically: {report}")
try:
    keys.get_deleted_key("py-purged")
    raise AssertionError("the purged key is still there")
except ResourceNotFoundError:
    facts["purged"] = True

# ── access control: built-in definitions, a custom role that grants release only ──
access = KeyVaultAccessControlClient(VAULT, credential)
definitions = {d.role_name: d for d in access.list_role_definitions(KeyVaultRoleScope.GLOBAL)}
expect(definitions["Managed HSM Crypto Service Release User"].name == "21dbd100-6940-42c2-9190-5d6cb909625c", "built-in id")
release_only = access.set_role_definition(
    KeyVaultRoleScope.GLOBAL,
    role_name="Python release only",
    description="release, nothing else",
    permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.RELEASE_KEY])],
)
expect(access.get_role_definition(KeyVaultRoleScope.GLOBAL, release_only.name).role_name == "Python release only", "custom role stored")
fails_with(
    400,
    lambda: access.set_role_definition(KeyVaultRoleScope.GLOBAL, role_name="bad", permissions=[KeyVaultPermission(data_actions=["Microsoft.KeyVault/managedHsm/keys/teleport/action"])]),
    "unknown data action",
)
workload = control("/workload")
assignment = access.create_role_assignment(KeyVaultRoleScope.GLOBAL, release_only.id, workload["clientId"])
expect(assignment.properties.principal_id == workload["clientId"], "assignment made")
expect(any(a.name == assignment.name for a in access.list_role_assignments(KeyVaultRoleScope.GLOBAL)), "assignment listed")
expect(access.get_role_assignment(KeyVaultRoleScope.GLOBAL, assignment.name).properties.role_definition_id == release_only.id, "assignment names the role")

policy_json = json.dumps(control("/policy")).encode()
keys.create_rsa_key("py-skr", size=2048, hardware_protected=True, exportable=True, release_policy=KeyReleasePolicy(policy_json))
workload_credential = ClientSecretCredential("adfs", workload["clientId"], workload["clientSecret"], authority=os.environ["AZURE_AUTHORITY_HOST"])
as_workload = KeyClient(VAULT, workload_credential)
released = as_workload.release_key("py-skr", control("/token")["token"])
expect(released.value.count(".") == 2, "a release JWS")
fails_with(403, lambda: as_workload.get_key("py-skr"), "release-only role cannot read")
fails_with(403, lambda: as_workload.create_ec_key("py-not-allowed"), "release-only role cannot create")
facts["release_only_role"] = True
access.delete_role_assignment(KeyVaultRoleScope.GLOBAL, assignment.name)
fails_with(403, lambda: as_workload.release_key("py-skr", control("/token")["token"]), "no release after the assignment is gone")
kept_role = access.set_role_definition(KeyVaultRoleScope.GLOBAL, role_name="Python kept role", permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY])])
kept_assignment = access.create_role_assignment(KeyVaultRoleScope.KEYS, kept_role.id, "someone-kept")
access.delete_role_definition(KeyVaultRoleScope.GLOBAL, release_only.name)

# ── full backup, and restore of the whole vault into a fresh server (same master key) ──
backup = KeyVaultBackupClient(VAULT, credential)
result = backup.begin_backup(BACKUP_CONTAINER, "sas-token-unused").result()
folder = result.folder_url
expect(folder.startswith(BACKUP_CONTAINER + "/"), f"folder under the container: {folder}")
facts["backup_folder"] = folder

# Access tokens are the issuing server's own: each fresh server is its own authority (same admin client).
def admin_of(url):
    return ClientSecretCredential("adfs", os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"], authority=url)


fresh = control("/fresh?master=same")["url"]
fresh_credential = admin_of(fresh)
fresh_keys = KeyClient(fresh, fresh_credential)
fails_with(404, lambda: fresh_keys.get_key("py-skr"), "the fresh vault is empty")
KeyVaultBackupClient(fresh, fresh_credential).begin_restore(folder, "sas-token-unused").wait()
restored = fresh_keys.get_key("py-skr")
expect(restored.properties.exportable is True, "restored with its attributes")
expect(fresh_keys.get_key("pymixedcase").name == "PyMixedCase", "restored names keep their case")
expect(len(list(fresh_keys.list_properties_of_key_versions("py-rotating"))) == 2, "every version restored")
expect(fresh_keys.get_key_rotation_policy("py-rotating").expires_in == "P90D", "rotation policy restored")
fresh_access = KeyVaultAccessControlClient(fresh, fresh_credential)
expect(fresh_access.get_role_definition(KeyVaultRoleScope.GLOBAL, kept_role.name).role_name == "Python kept role", "custom role restored")
expect(fresh_access.get_role_assignment(KeyVaultRoleScope.KEYS, kept_assignment.name).properties.principal_id == "someone-kept", "assignment restored")
facts["restored_keys"] = sorted(p.name for p in fresh_keys.list_properties_of_keys())

# selective restore of one key, after it is deleted and purged from the fresh vault
fresh_keys.begin_delete_key("PyMixedCase").wait()
fresh_keys.purge_deleted_key("PyMixedCase")
KeyVaultBackupClient(fresh, fresh_credential).begin_restore(folder, "sas-token-unused", key_name="pymixedcase").wait()
expect(fresh_keys.get_key("PyMixedCase").name == "PyMixedCase", "selective key restore")
facts["selective_restore"] = True

# a vault with another master key refuses the backup, clearly
other = control("/fresh?master=other")["url"]
err = fails_with(400, lambda: KeyVaultBackupClient(other, admin_of(other)).begin_restore(folder, "sas-token-unused").wait(), "restore under another master key")
expect("another master key" in err.message, f"clear error: {err.message}")
facts["foreign_restore_error"] = err.message[:400]

print(json.dumps(facts))
