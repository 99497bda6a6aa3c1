import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConclaveError } from '../core/errors.js';
import { classifyPgError } from './postgres.js';

/** A pg DatabaseError as the driver throws it (a SQLSTATE in `code`). */
function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

describe('classifyPgError: which SQLSTATEs are the request\'s fault', () => {
  test('22021, a NUL in text (PostgreSQL text cannot hold U+0000), is request.invalid', () => {
    const e = classifyPgError(pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00'));
    assert.ok(isConclaveError(e, 'request.invalid'), String(e));
  });

  test('22P05 is a store fault, never blamed on the request', () => {
    // With a UTF8 database (what Conclave expects) no statement of ours can raise 22P05: it comes from a
    // database of another encoding (LATIN1, say) refusing a character it has no room for, "character with
    // byte sequence 0xf0 0x9f 0x98 0x80 in encoding "UTF8" has no equivalent in encoding "LATIN1"" for an
    // emoji in a tag (checked against a LATIN1 database). A deployment fault: answered as a server error,
    // not as a 400 telling the client its request held a U+0000.
    const e = classifyPgError(pgError('22P05', 'character with byte sequence 0xf0 0x9f 0x98 0x80 in encoding "UTF8" has no equivalent in encoding "LATIN1"'));
    assert.ok(!isConclaveError(e, 'request.invalid'), `22P05 classified as ${isConclaveError(e) ? e.code : 'unclassified'}`);
  });
});
