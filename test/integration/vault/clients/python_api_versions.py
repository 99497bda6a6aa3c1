"""Every api-version the Debian python3-azure SDKs send, each driving the calls that version has, through
the official clients unchanged (challenge check on, credential from the environment alone):

  azure.keyvault.keys 4.8:              2016-10-01, 7.0, 7.1, 7.2, 7.3, 7.4-preview.1 (its default)
  azure.keyvault.administration 4.3:    7.2, 7.3, 7.4-preview.1 (its default)

Per keys version: create (RSA, EC), get, list, versions, update, sign/verify, encrypt/decrypt,
wrap/unwrap, backup, delete, get/list deleted, recover, purge, restore; from 7.2 oct keys; from 7.3
random bytes, rotation policies, rotate and release. Per administration version: role definitions
(built-in and custom), role assignments, a full backup and a selective restore; in 7.4-preview.1 the
settings (KeyVaultSettingsClient). The members a version
defines are checked (recoverableDays from 7.1, exportable and release policy from 7.3). Prints one JSON
line of facts at the end; any failed expectation raises. Last, ClientSecretCredential with a GUID tenant
and instance discovery off (the documented alternative to AZURE_TENANT_ID=adfs).
"""
import hashlib
import json
import os
import socket
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
    ApiVersion as AdminApiVersion,
    KeyVaultAccessControlClient,
    KeyVaultBackupClient,
    KeyVaultDataAction,
    KeyVaultPermission,
    KeyVaultRoleScope,
    KeyVaultSettingsClient,
)
from azure.keyvault.keys import (  # noqa: E402
    ApiVersion,
    KeyClient,
    KeyReleasePolicy,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
)
from azure.keyvault.keys.crypto import (  # noqa: E402
    CryptographyClient,
    EncryptionAlgorithm,
    KeyWrapAlgorithm,
    SignatureAlgorithm,
)

CONTROL = os.environ["CONCLAVE_TEST_CONTROL"]
VAULT = os.environ["CONCLAVE_TEST_VAULT"]
BACKUP_CONTAINER = os.environ["CONCLAVE_TEST_BACKUP_CONTAINER"]
ORDER = ["2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4-preview.1"]


def control(path):
    import urllib.request

    with urllib.request.urlopen(f"{CONTROL}{path}", timeout=120) as r:
        return json.loads(r.read().decode())


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def at_least(v, floor):
    return ORDER.index(v) >= ORDER.index(floor)


credential = DefaultAzureCredential()
facts = {"keys": {}, "administration": {}}
digest = hashlib.sha256(b"conclave api-version").digest()

versions = [v.value for v in ApiVersion]
expect(sorted(versions, key=ORDER.index) == ORDER, f"the SDK's versions are the ones this test knows: {versions}")

for v in ORDER:
    keys = KeyClient(VAULT, credential, api_version=v)
    p = "pyv-" + v.replace(".", "-")
    done = []

    rsa = keys.create_rsa_key(f"{p}-rsa", size=2048, tags={"v": v})
    expect(rsa.key_type == "RSA" and rsa.properties.tags == {"v": v}, f"{v}: RSA key created")
    ec = keys.create_ec_key(f"{p}-ec", curve="P-256", hardware_protected=True)
    expect(ec.key_type == "EC-HSM" and ec.key.crv == "P-256", f"{v}: EC key created")
    expect((rsa.properties.recoverable_days is not None) == at_least(v, "7.1"), f"{v}: recoverableDays only from 7.1: {rsa.properties.recoverable_days}")
    expect((rsa.properties.exportable is not None) == at_least(v, "7.3"), f"{v}: exportable only from 7.3: {rsa.properties.exportable}")
    expect(rsa.properties.recovery_level in ("Recoverable+Purgeable", "CustomizedRecoverable+Purgeable"), f"{v}: recovery level {rsa.properties.recovery_level}")
    expect(keys.get_key(f"{p}-RSA").id == rsa.id, f"{v}: get in another case")
    expect(keys.get_key(rsa.name, rsa.properties.version).key.n == rsa.key.n, f"{v}: get a version")
    expect({f"{p}-rsa", f"{p}-ec"} <= {k.name for k in keys.list_properties_of_keys()}, f"{v}: listed")
    expect([k.version for k in keys.list_properties_of_key_versions(rsa.name)] == [rsa.properties.version], f"{v}: versions")
    updated = keys.update_key_properties(rsa.name, rsa.properties.version, tags={"v": v, "updated": "yes"}, key_operations=["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"])
    expect(updated.properties.tags["updated"] == "yes", f"{v}: updated")
    done.append("create/get/list/update")

    crypto = CryptographyClient(rsa, credential, api_version=v)
    signed = crypto.sign(SignatureAlgorithm.rs256, digest)
    expect(crypto.verify(SignatureAlgorithm.rs256, digest, signed.signature).is_valid, f"{v}: RS256 verifies")
    encrypted = crypto.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"secret")
    expect(crypto.decrypt(EncryptionAlgorithm.rsa_oaep_256, encrypted.ciphertext).plaintext == b"secret", f"{v}: RSA-OAEP-256 round trip")
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep, b"k" * 32)
    expect(crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep, wrapped.encrypted_key).key == b"k" * 32, f"{v}: RSA-OAEP wrap round trip")
    ec_crypto = CryptographyClient(ec, credential, api_version=v)
    ec_signed = ec_crypto.sign(SignatureAlgorithm.es256, digest)
    expect(ec_crypto.verify(SignatureAlgorithm.es256, digest, ec_signed.signature).is_valid, f"{v}: ES256 verifies")
    done.append("sign/verify/encrypt/decrypt/wrap/unwrap")

    backup = keys.backup_key(rsa.name)
    deleted = keys.begin_delete_key(rsa.name).result()
    expect(deleted.recovery_id.endswith(f"/deletedkeys/{rsa.name}") and deleted.scheduled_purge_date is not None, f"{v}: deleted key")
    expect(keys.get_deleted_key(rsa.name).name == rsa.name, f"{v}: get deleted")
    expect(rsa.name in {k.name for k in keys.list_deleted_keys()}, f"{v}: list deleted")
    recovered = keys.begin_recover_deleted_key(rsa.name).result()
    expect(recovered.id == updated.id, f"{v}: recovered")
    keys.begin_delete_key(rsa.name).wait()
    keys.purge_deleted_key(rsa.name)
    try:
        keys.get_deleted_key(rsa.name)
        raise AssertionError(f"{v}: purged key still there")
    except ResourceNotFoundError:
        pass
    restored = keys.restore_key_backup(backup)
    expect(restored.id == updated.id and restored.properties.tags["updated"] == "yes", f"{v}: restored")
    done.append("backup/delete/recover/purge/restore")

    if at_least(v, "7.2"):
        oct_key = keys.create_oct_key(f"{p}-oct", size=256, hardware_protected=True)
        expect(oct_key.key_type == "oct-HSM", f"{v}: oct key")
        oct_crypto = CryptographyClient(oct_key, credential, api_version=v)
        oct_wrapped = oct_crypto.wrap_key(KeyWrapAlgorithm.aes_256, b"w" * 32)
        expect(oct_crypto.unwrap_key(KeyWrapAlgorithm.aes_256, oct_wrapped.encrypted_key).key == b"w" * 32, f"{v}: A256KW round trip")
        done.append("oct")

    if at_least(v, "7.3"):
        # The SDK's 7.2 models have no random-bytes request (the service had /rng for 7.2 Managed HSMs).
        expect(len(keys.get_random_bytes(32)) == 32, f"{v}: random bytes")
        expect(keys.get_key_rotation_policy(ec.name).lifetime_actions[0].action == KeyRotationPolicyAction.notify, f"{v}: default rotation policy")
        policy = keys.update_key_rotation_policy(
            ec.name,
            KeyRotationPolicy(),
            lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_before_expiry="P30D")],
            expires_in="P60D",
        )
        expect(policy.expires_in == "P60D" and policy.lifetime_actions[0].time_before_expiry == "P30D", f"{v}: rotation policy stored")
        rotated = keys.rotate_key(ec.name)
        expect(rotated.properties.version != ec.properties.version, f"{v}: rotated")
        expect((rotated.properties.expires_on - rotated.properties.created_on).days == 60, f"{v}: rotated exp from expiryTime")
        policy_json = json.dumps(control("/policy")).encode()
        skr = keys.create_rsa_key(f"{p}-skr", size=2048, hardware_protected=True, exportable=True, release_policy=KeyReleasePolicy(policy_json))
        expect(skr.properties.exportable is True and skr.properties.release_policy is not None, f"{v}: exportable with a release policy")
        released = keys.release_key(skr.name, control("/token")["token"], nonce="n-" + v)
        expect(released.value.count(".") == 2, f"{v}: a release JWS")
        done.append("rng/rotation/release")

    facts["keys"][v] = done

# ── administration: access control and full backup in each of its versions ──
admin_versions = [v.value for v in AdminApiVersion]
expect(sorted(admin_versions) == ["7.2", "7.3", "7.4-preview.1"], f"the administration SDK's versions: {admin_versions}")
for v in admin_versions:
    access = KeyVaultAccessControlClient(VAULT, credential, api_version=v)
    done = []
    definitions = {d.role_name: d for d in access.list_role_definitions(KeyVaultRoleScope.GLOBAL)}
    expect(definitions["Managed HSM Crypto User"].name == "21dbd100-6940-42c2-9190-5d6cb909625b", f"{v}: built-in definitions")
    custom = access.set_role_definition(
        KeyVaultRoleScope.GLOBAL,
        role_name=f"sign only {v}",
        permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.SIGN_HSM_KEY])],
    )
    expect(access.get_role_definition(KeyVaultRoleScope.GLOBAL, custom.name).role_name == f"sign only {v}", f"{v}: custom definition")
    principal = str(uuid.uuid4())
    assignment = access.create_role_assignment(KeyVaultRoleScope.KEYS, custom.id, principal)
    expect(access.get_role_assignment(KeyVaultRoleScope.KEYS, assignment.name).properties.principal_id == principal, f"{v}: assignment")
    expect(any(a.name == assignment.name for a in access.list_role_assignments(KeyVaultRoleScope.KEYS)), f"{v}: assignment listed")
    access.delete_role_assignment(KeyVaultRoleScope.KEYS, assignment.name)
    access.delete_role_definition(KeyVaultRoleScope.GLOBAL, custom.name)
    try:
        access.get_role_definition(KeyVaultRoleScope.GLOBAL, custom.name)
        raise AssertionError(f"{v}: deleted definition still there")
    except ResourceNotFoundError:
        pass
    done.append("access control")

    backup_client = KeyVaultBackupClient(VAULT, credential, api_version=v)
    folder = backup_client.begin_backup(BACKUP_CONTAINER, "sas-token-unused").result().folder_url
    expect(folder.startswith(BACKUP_CONTAINER + "/"), f"{v}: backup folder {folder}")
    keys = KeyClient(VAULT, credential)
    name = "pyv-2016-10-01-ec"
    keys.begin_delete_key(name).wait()
    keys.purge_deleted_key(name)
    backup_client.begin_restore(folder, "sas-token-unused", key_name=name).wait()
    expect(keys.get_key(name).name == name, f"{v}: selective restore")
    done.append("backup/selective restore")
    if v == "7.4-preview.1":
        settings = KeyVaultSettingsClient(VAULT, credential, api_version=v)
        listed = {x.name: x.value for x in settings.list_settings()}
        expect(listed == {"AllowKeyManagementOperationsThroughARM": "false"}, f"{v}: settings {listed}")
        expect(settings.get_setting("AllowKeyManagementOperationsThroughARM").value == "false", f"{v}: get setting")
        expect(settings.update_setting("AllowKeyManagementOperationsThroughARM", "false").value == "false", f"{v}: unchanged setting")
        try:
            settings.update_setting("AllowKeyManagementOperationsThroughARM", "true")
            raise AssertionError(f"{v}: key management through ARM was switched on")
        except HttpResponseError as e:
            expect(e.status_code == 400, f"{v}: {e.status_code}")
        done.append("settings")
    facts["administration"][v] = done

# ── a GUID tenant (the challenge's) instead of adfs: instance discovery must be skipped (docs/vault.md) ──
guid_credential = ClientSecretCredential(
    "00000000-0000-0000-0000-000000000000", os.environ["AZURE_CLIENT_ID"], os.environ["AZURE_CLIENT_SECRET"], instance_discovery=False
)
expect(KeyClient(VAULT, guid_credential).get_key("pyv-7-0-ec").name == "pyv-7-0-ec", "a GUID tenant with instance_discovery=False")
facts["guid_tenant"] = True

print(json.dumps(facts))
