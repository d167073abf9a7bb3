/** Pure logic behind the boundary messages: redaction of URLs that may not parse, failure wording, syntax positions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterError, TransportError } from '../../src/cluster/errors.js';
import { explainFailure, retryNotice } from '../../src/cluster/explain.js';
import { onClusterNotice } from '../../src/cluster/notices.js';
import { hasUserinfo, redactUrl, redactUrlsIn } from '../../src/cluster/redact.js';
import { isParseError, parseSyntaxReport } from '../../src/copy/syntax-error.js';
import { clusterConfig, resolveSpec, SpecError } from '../../src/spec/load.js';

describe('URL redaction', () => {
  it('masks userinfo whether or not the URL parses', () => {
    assert.equal(redactUrl('http://elastic:pw123@127.0.0.1:381150'), 'http://***@127.0.0.1:381150');
    assert.equal(redactUrl('elastic:pw123@127.0.0.1:9200'), '***@127.0.0.1:9200');
    assert.equal(redactUrl('http://u:pa/ss@host:9200'), 'http://***@host:9200');
    // Parses as host "u", port 12, path "/ss@host": the "@" in the path gives the password away.
    assert.equal(redactUrl('http://u:12/ss@host'), 'http://***@host');
    assert.equal(redactUrl('http://127.0.0.1:9200/'), 'http://127.0.0.1:9200/');
    assert.equal(redactUrl('http://bob:pw@h:1/'), 'http://***:***@h:1/');
  });
  it('tells whether a URL carries userinfo', () => {
    assert.equal(hasUserinfo('http://bob:pw@h:1'), true);
    assert.equal(hasUserinfo('bob:pw@h:1'), true);
    assert.equal(hasUserinfo('http://h:1/?api_key=x'), false);
  });
  it('masks URL userinfo inside free text', () => {
    assert.equal(
      redactUrlsIn('bad line: url: "https://a:b/c@h:1" and http://h:2/x'),
      'bad line: url: "https://***@h:1" and http://h:2/x',
    );
  });
  it('keeps the password out of a spec validation error and names the field', () => {
    const spec = (url: string) => ({
      name: 'm',
      source: { cluster: { url }, index: 'a' },
      target: { index: 'b' },
    });
    for (const url of ['http://e:Pw0rdX@127.0.0.1:381150', 'e:Pw0rdX@127.0.0.1:9200']) {
      assert.throws(
        () => resolveSpec(spec(url), '/tmp'),
        (e: unknown) =>
          e instanceof SpecError && /source\.cluster\.url: /.test(e.message) && !e.message.includes('Pw0rdX'),
      );
    }
  });
});

describe('cluster config from the spec', () => {
  it('carries the field and the auth setting, and says which credentials win', () => {
    const notices: string[] = [];
    onClusterNotice((m) => notices.push(m));
    try {
      process.env.CUTOVER_UNIT_PW = 'envpw';
      const c = clusterConfig(
        { url: 'http://u:urlpw@h:1', auth: { username: 'u', passwordEnv: 'CUTOVER_UNIT_PW' } },
        'target.cluster',
      );
      assert.equal(c.label, 'target.cluster');
      assert.equal(
        c.authSetting,
        'target.cluster.auth.username (u) with target.cluster.auth.passwordEnv (CUTOVER_UNIT_PW)',
      );
      assert.equal(notices.length, 1);
      assert.match(
        notices[0]!,
        /target\.cluster\.url carries credentials and target\.cluster\.auth is set too/,
      );
      assert.ok(!notices[0]!.includes('urlpw') && !notices[0]!.includes('envpw'));
      clusterConfig({ url: 'http://h:1', auth: { apiKey: 'k3y' } }, 'source.cluster');
      assert.equal(notices.length, 1, 'no notice without credentials in the URL');
    } finally {
      onClusterNotice(() => {});
      delete process.env.CUTOVER_UNIT_PW;
    }
  });
});

describe('failure wording', () => {
  const ctx = {
    label: 'source.cluster',
    displayUrl: 'https://h:9200/',
    authSetting: 'source.cluster.auth.apiKeyEnv (K)',
  };
  it('says to use http:// when TLS met plain HTTP', () => {
    const e = new TransportError(
      'ssl3_get_record:wrong version number',
      'ERR_SSL_WRONG_VERSION_NUMBER',
      'GET',
      '/',
    );
    assert.equal(
      explainFailure(e, ctx, 0, 5),
      'source.cluster: the server at https://h:9200/ answered plain HTTP to a TLS request: use http:// in source.cluster.url',
    );
  });
  it('names the address, the retries and the field of a refused connection', () => {
    const e = new TransportError('connect ECONNREFUSED', 'ECONNREFUSED', 'GET', '/x', '10.0.0.1:9200');
    const plain = { ...ctx, displayUrl: 'http://h:9200/' };
    assert.equal(
      explainFailure(e, plain, 3, 4200),
      'source.cluster: connection refused by 10.0.0.1:9200 (GET /x); retried 3 time(s) over 4.2 s: is the cluster running, and is source.cluster.url (http://h:9200/) right?',
    );
    assert.equal(
      retryNotice(e, plain, 2, 150, 20_000),
      'source.cluster: connection refused by 10.0.0.1:9200 (GET /x); retrying (attempt 2, next in 150 ms, gives up 20.0 s after the first try)',
    );
  });
  it('names the auth setting of a 401, or says none is set', () => {
    const e = new ClusterError(401, 'security_exception', 'unable to authenticate', 'GET', '/');
    assert.match(explainFailure(e, ctx, 0, 1), /refused; check source\.cluster\.auth\.apiKeyEnv \(K\)$/);
    assert.match(
      explainFailure(e, { ...ctx, authSetting: undefined }, 0, 1),
      /the cluster wants credentials and source\.cluster\.auth is not set$/,
    );
    assert.match(
      explainFailure(e, { displayUrl: 'http://h:1/' }, 0, 1),
      /^cluster http:\/\/h:1\/: GET \/ -> 401/,
    );
  });
});

describe('syntax error positions', () => {
  it("reads file, line and column from Node's report", () => {
    const report =
      "file:///tmp/t.mjs:2\n\tconst x = ;\n\t          ^\n\nSyntaxError: Unexpected token ';'\n    at x";
    assert.deepEqual(parseSyntaxReport(report), {
      file: '/tmp/t.mjs',
      line: 2,
      column: 12,
      message: "SyntaxError: Unexpected token ';'",
    });
  });
  it('puts an error without a caret past the end of its line', () => {
    const report = '/tmp/t.mjs:3\n\n\n\nSyntaxError: Unexpected end of input\n';
    assert.equal(parseSyntaxReport(report, () => '}  ')?.column, 4);
  });
  it('gives nothing for a report of another shape', () => {
    assert.equal(parseSyntaxReport('Error: Cannot find module x'), undefined);
  });
  it('tells a parse error from a SyntaxError thrown by running code', () => {
    const parse = new SyntaxError("Unexpected token ';'");
    parse.stack =
      "SyntaxError: Unexpected token ';'\n    at compileSourceTextModule (node:internal/modules/esm/utils:346:16)";
    assert.equal(isParseError(parse), true);
    const thrown = new SyntaxError('Unexpected token x in JSON');
    thrown.stack =
      'SyntaxError: Unexpected token x in JSON\n    at JSON.parse (<anonymous>)\n    at file:///tmp/t.mjs:1:6';
    assert.equal(isParseError(thrown), false);
  });
});
