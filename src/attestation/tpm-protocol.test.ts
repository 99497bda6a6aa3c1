import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rawJsonMember } from './tpm-protocol.js';

describe('rawJsonMember (the request key JWK exactly as sent)', () => {
  test('finds nested members by key path, through strings with braces and escapes', () => {
    const text = '{"a":[1,{"b":"}"}],"att_data" : {"x":"\\"}","request_key":{"jwk": {"n" : "a,b}"}  , "info":{}}}}';
    assert.equal(rawJsonMember(text, ['att_data', 'request_key', 'jwk']), '{"n" : "a,b}"}');
    assert.equal(rawJsonMember(text, ['att_data', 'x']), '"\\"}"');
    assert.equal(rawJsonMember(text, ['att_data', 'missing']), undefined);
    assert.equal(rawJsonMember('[1]', ['a']), undefined);
  });
});
