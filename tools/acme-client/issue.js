#!/usr/bin/env node
// issue.js drives an ACME server with the npm package acme-client (pinned
// in package-lock.json): it creates an account (with External Account
// Binding when --eab-kid and --eab-hmac are given), orders a certificate
// for the names given using dns-01 (the challenge hook writes the
// _acme-challenge TXT record with RFC 2136 through `nsupdate`, TSIG-signed),
// downloads it (and its alternate chains, Link rel="alternate"), reads its
// ARI renewalInfo (RFC 9773), optionally renews it with newOrder "replaces",
// rolls the account key over, revokes the certificates (by the account key,
// or the last one by its own key with --revoke-with-cert-key) and
// deactivates the account.
//
//   node issue.js --directory https://127.0.0.1:8443/acme/directory \
//     [--eab-kid eab_… --eab-hmac …] [--profile server-dv] [--out DIR] \
//     [--renew] [--rollover] [--revoke [--reason N] [--revoke-with-cert-key]] \
//     [--deactivate] name…
//
// DNS: --dns-server host:port (the authoritative server taking updates;
// default $CERTDESK_DEV_DNS_SERVER), --tsig hmac-sha256:name:secret
// (default $CERTDESK_DEV_DNS_TSIG) and --resolver host:port (waited on
// until it sees the record; default $CERTDESK_DCV_RESOLVER). Trust the
// server's TLS certificate with NODE_EXTRA_CA_CERTS.
//
// Progress goes to stderr; stdout gets one JSON object at the end:
// {account, certificates: [{serial, certID, pem, suggestedWindow,
// retryAfter, replaces, alternates}], revoked, features}. features maps each
// RFC 8555 / RFC 9773 feature the run exercised (directory, newNonce,
// newAccount, newOrder, dns-01, finalize, download, alternates, keyChange,
// deactivate, revokeByAccountKey, revokeByCertKey, renewalInfo, replaces,
// profiles) to "pass", "fail: why" or "none: why" (not offered, e.g. no
// alternate chain). The exit status is 1 if a feature failed.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const https = require('https');
const { execFileSync } = require('child_process');
const { Resolver } = require('dns').promises;
const acme = require('acme-client');
const x509 = require('@peculiar/x509');

function usage(msg) {
    process.stderr.write(`issue.js: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const o = {
        names: [], profile: '', out: '', renew: false, revoke: false, reason: 0,
        rollover: false, deactivate: false, revokeWithCertKey: false,
        dnsServer: process.env.CERTDESK_DEV_DNS_SERVER || '',
        tsig: process.env.CERTDESK_DEV_DNS_TSIG || '',
        resolver: process.env.CERTDESK_DCV_RESOLVER || '',
    };
    const value = (i) => {
        if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
        return argv[i + 1];
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        switch (a) {
            case '--directory': o.directory = value(i); i++; break;
            case '--eab-kid': o.kid = value(i); i++; break;
            case '--eab-hmac': o.hmac = value(i); i++; break;
            case '--profile': o.profile = value(i); i++; break;
            case '--out': o.out = value(i); i++; break;
            case '--dns-server': o.dnsServer = value(i); i++; break;
            case '--tsig': o.tsig = value(i); i++; break;
            case '--resolver': o.resolver = value(i); i++; break;
            case '--reason': o.reason = Number(value(i)); i++; break;
            case '--renew': o.renew = true; break;
            case '--revoke': o.revoke = true; break;
            case '--revoke-with-cert-key': o.revokeWithCertKey = true; break;
            case '--rollover': o.rollover = true; break;
            case '--deactivate': o.deactivate = true; break;
            default:
                if (a.startsWith('--')) usage(`unknown flag ${a}`);
                o.names.push(a.toLowerCase());
        }
    }
    if (!o.directory) usage('--directory is required');
    if (!o.kid !== !o.hmac) usage('--eab-kid and --eab-hmac go together');
    if (o.names.length === 0) usage('name the certificate\'s DNS names');
    if (!o.dnsServer || !/^hmac-[a-z0-9]+:[^:]+:.+$/.test(o.tsig)) usage('--dns-server and --tsig (hmac-sha256:name:secret) are required for dns-01');
    return o;
}

const log = (m) => process.stderr.write(`issue.js: ${m}\n`);
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

function hostPort(s) {
    const i = s.lastIndexOf(':');
    return i < 0 ? [s, '53'] : [s.slice(0, i).replace(/^\[|\]$/g, ''), s.slice(i + 1)];
}

// nsupdate sends one RFC 2136 update, TSIG-signed with a key file (so the
// secret is not on a command line).
function nsupdate(opts, lines) {
    const [alg, name, secret] = [opts.tsig.split(':')[0], opts.tsig.split(':')[1], opts.tsig.split(':').slice(2).join(':')];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'issue-js-'));
    const keyFile = path.join(dir, 'tsig.key');
    try {
        fs.writeFileSync(keyFile, `key "${name}" {\n  algorithm ${alg};\n  secret "${secret}";\n};\n`, { mode: 0o600 });
        const [host, port] = hostPort(opts.dnsServer);
        const script = [`server ${host} ${port}`, ...lines, 'send', ''].join('\n');
        execFileSync('nsupdate', ['-k', keyFile], { input: script, stdio: ['pipe', 'inherit', 'inherit'], timeout: 30000 });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

// waitTXT polls a DNS server until name has a TXT record with value.
async function waitTXT(server, name, value, timeoutMs = 60000) {
    const r = new Resolver({ timeout: 2000, tries: 1 });
    const [host, port] = hostPort(server);
    r.setServers([`${host}:${port}`]);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        try {
            const recs = await r.resolveTxt(name);
            if (recs.some((chunks) => chunks.join('') === value)) return;
        } catch (e) {
            // NXDOMAIN or no answer yet
        }
        if (Date.now() > deadline) throw new Error(`${server} does not show TXT ${name} = ${value}`);
        await sleep(250);
    }
}

// get is a plain GET (directory, renewalInfo) with the User-Agent RFC 8555
// §6.1 requires of every request.
function get(url) {
    return new Promise((resolve, reject) => {
        https.get(url, { headers: { 'User-Agent': 'certdesk-issue.js (acme-client 5.4.0)' } }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { body += c; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        }).on('error', reject);
    });
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// certID is the RFC 9773 §4.1 identifier: base64url(AKI keyIdentifier) "."
// base64url(the serial's DER INTEGER content octets).
function certID(pem) {
    const cert = new x509.X509Certificate(pem);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
    if (!aki || !aki.keyId) throw new Error('the certificate has no authority key identifier');
    let hex = cert.serialNumber.replace(/^(00)+/, '') || '00';
    if (hex.length % 2) hex = `0${hex}`;
    if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
    return { id: `${b64url(Buffer.from(aki.keyId, 'hex'))}.${b64url(Buffer.from(hex, 'hex'))}`, serial: hex.replace(/^0+/, '') || '0' };
}

// features records what the run saw of each feature: a failure sticks, a
// pass beats "none" (not offered).
const features = {};
const rank = (o) => (o.startsWith('fail') ? 2 : o === 'pass' ? 1 : 0);
function saw(feature, outcome) {
    if (!features[feature] || rank(outcome) > rank(features[feature])) features[feature] = outcome;
}
async function step(feature, fn) {
    try {
        const v = await fn();
        saw(feature, 'pass');
        return v;
    } catch (e) {
        saw(feature, `fail: ${e && e.message ? e.message.split('\n')[0] : e}`);
        log(`${feature} failed: ${e && e.stack ? e.stack : e}`);
        throw e;
    }
}

async function issueOnce(client, opts, replaces) {
    const order = { identifiers: opts.names.map((value) => ({ type: 'dns', value })) };
    if (opts.profile) order.profile = opts.profile;
    if (replaces) order.replaces = replaces;
    const o = await step(replaces ? 'replaces' : 'newOrder', () => client.createOrder(order));
    if (opts.profile) {
        await step('profiles', async () => {
            const profiles = await client.http.getMetaField('profiles');
            if (!profiles || !(opts.profile in profiles)) throw new Error(`the directory meta lists no profile ${opts.profile}`);
            if (o.profile !== opts.profile) throw new Error(`the order's profile is ${JSON.stringify(o.profile)}, not ${opts.profile}`);
        });
    }
    const authzs = await client.getAuthorizations(o);
    for (const authz of authzs) {
        if (authz.status === 'valid') continue;
        const ch = authz.challenges.find((c) => c.type === 'dns-01');
        if (!ch) throw new Error(`no dns-01 challenge for ${authz.identifier.value}`);
        const value = await client.getChallengeKeyAuthorization(ch);
        const rr = `_acme-challenge.${authz.identifier.value}.`;
        log(`dns-01 for ${authz.identifier.value}: TXT ${rr} via RFC 2136 to ${opts.dnsServer}`);
        nsupdate(opts, [`update add ${rr} 60 TXT "${value}"`]);
        try {
            await waitTXT(opts.dnsServer, rr, value);
            if (opts.resolver) await waitTXT(opts.resolver, rr, value);
            await step('dns-01', async () => {
                await client.completeChallenge(ch);
                await client.waitForValidStatus(ch);
            });
        } finally {
            nsupdate(opts, [`update delete ${rr} TXT "${value}"`]);
        }
    }
    const [key, csr] = await acme.crypto.createCsr({ altNames: opts.names }, await acme.crypto.createPrivateEcdsaKey());
    const done = await step('finalize', async () => client.waitForValidStatus(await client.finalizeOrder(o, csr)));
    const { chain, alternates } = await step('download', () => download(client, done));
    const leaf = acme.crypto.splitPemChain(chain)[0];
    const id = certID(leaf);
    log(`issued serial ${id.serial}, certID ${id.id}, ${alternates.length} alternate chain(s)`);
    return { chain, leaf, key, alternates: alternates.length, ...id };
}

// download fetches the certificate chain (POST-as-GET, RFC 8555 §7.4.2)
// and every alternate chain its Link rel="alternate" headers name; each
// must hold the same leaf.
async function download(client, order) {
    if (!order.certificate) throw new Error('the valid order has no certificate URL');
    const resp = await client.api.apiRequest(order.certificate, null, [200]);
    const chain = resp.data.toString();
    const pems = acme.crypto.splitPemChain(chain);
    if (pems.length < 1 || !/^-----BEGIN CERTIFICATE-----/.test(pems[0])) throw new Error('the download is not a PEM chain');
    const urls = parseAlternates(resp.headers.link);
    const alternates = [];
    if (urls.length === 0) saw('alternates', 'none: no Link rel="alternate"');
    else {
        await step('alternates', async () => {
            for (const u of urls) {
                const alt = (await client.api.apiRequest(u, null, [200])).data.toString();
                if (acme.crypto.splitPemChain(alt)[0].replace(/\s/g, '') !== pems[0].replace(/\s/g, '')) throw new Error(`alternate ${u} holds another leaf`);
                alternates.push(alt);
            }
        });
    }
    return { chain, alternates };
}

function parseAlternates(header) {
    const h = Array.isArray(header) ? header.join(', ') : (header || '');
    return h.split(/,\s*(?=<)/).map((l) => l.match(/^\s*<([^>]*)>\s*;(.*)$/)).filter((m) => m && /rel\s*=\s*"?alternate"?/i.test(m[2])).map((m) => m[1]);
}

// renewalInfo asks the directory's renewalInfo resource about a certID.
async function renewalInfo(opts, id) {
    const dir = JSON.parse((await get(opts.directory)).body);
    if (!dir.renewalInfo) throw new Error('the directory has no renewalInfo (RFC 9773)');
    const res = await get(`${dir.renewalInfo.replace(/\/$/, '')}/${id}`);
    if (res.status !== 200) throw new Error(`renewalInfo: ${res.status} ${res.body}`);
    const info = JSON.parse(res.body);
    const w = info.suggestedWindow || {};
    if (!(Date.parse(w.end) > Date.parse(w.start))) throw new Error(`renewalInfo: invalid window ${res.body}`);
    return { suggestedWindow: w, retryAfter: res.headers['retry-after'] || '' };
}

// revokeWithCertKey revokes cert with a JWS signed by the certificate's own
// key (jwk header, no account; RFC 8555 §7.6).
async function revokeWithCertKey(opts, c) {
    const kc = new acme.Client({ directoryUrl: opts.directory, accountKey: c.key });
    const der = Buffer.from(c.leaf.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    await kc.api.apiResourceRequest('revokeCert', { certificate: der.toString('base64url'), reason: opts.reason }, [200], { includeJwsKid: false });
}

async function checkDirectory(opts) {
    const res = await get(opts.directory);
    if (res.status !== 200) throw new Error(`directory: ${res.status}`);
    const dir = JSON.parse(res.body);
    for (const r of ['newNonce', 'newAccount', 'newOrder', 'revokeCert', 'keyChange']) {
        if (!/^https:\/\//.test(dir[r] || '')) throw new Error(`the directory has no https ${r} URL`);
    }
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const accountKey = await acme.crypto.createPrivateEcdsaKey();
    const client = new acme.Client({
        directoryUrl: opts.directory,
        accountKey,
        externalAccountBinding: opts.kid ? { kid: opts.kid, hmacKey: opts.hmac } : undefined,
    });
    const result = { account: '', certificates: [], revoked: [], features };
    const finish = (code) => {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        process.exit(Object.values(features).some((f) => f.startsWith('fail')) ? 1 : code);
    };
    const issued = [];
    try {
        await step('directory', () => checkDirectory(opts));
        await step('newNonce', () => client.http.getNonce());
        await step('newAccount', () => client.createAccount({ termsOfServiceAgreed: true }));
        result.account = client.getAccountUrl();
        log(`account ${result.account}`);
        issued.push(await issueOnce(client, opts, ''));
    } catch (e) {
        finish(1);
    }
    for (const [i, c] of issued.entries()) {
        const ari = await step('renewalInfo', () => renewalInfo(opts, c.id)).catch(() => ({ suggestedWindow: {}, retryAfter: '' }));
        log(`renewalInfo ${c.id}: ${ari.suggestedWindow.start} – ${ari.suggestedWindow.end}, Retry-After ${ari.retryAfter}`);
        c.ari = ari;
        if (i === 0 && opts.renew) {
            try {
                issued.push(await issueOnce(client, opts, c.id));
            } catch (e) {
                // recorded
            }
        }
    }
    for (const [i, c] of issued.entries()) {
        result.certificates.push({ serial: c.serial, certID: c.id, pem: c.leaf, ...c.ari, replaces: i > 0 ? issued[0].id : '', alternates: c.alternates });
        if (opts.out) {
            fs.mkdirSync(opts.out, { recursive: true });
            fs.writeFileSync(path.join(opts.out, `cert${i}.pem`), c.chain);
            fs.writeFileSync(path.join(opts.out, `cert${i}.key`), c.key, { mode: 0o600 });
        }
    }
    if (opts.rollover) {
        // The new key works and the old one no longer names the account.
        await step('keyChange', async () => {
            await client.updateAccountKey(await acme.crypto.createPrivateEcdsaKey());
            const a = await client.updateAccount();
            if (a.status !== 'valid') throw new Error(`account status ${a.status} after the key change`);
            const old = new acme.Client({ directoryUrl: opts.directory, accountKey });
            let found = true;
            try {
                await old.createAccount({ onlyReturnExisting: true });
            } catch (e) {
                found = false;
            }
            if (found) throw new Error('the old key still names the account');
            log('account key rolled over');
        }).catch(() => {});
    }
    if (opts.revoke) {
        for (const [i, c] of issued.entries()) {
            const byCertKey = opts.revokeWithCertKey && i === issued.length - 1;
            const ok = await step(byCertKey ? 'revokeByCertKey' : 'revokeByAccountKey', async () => {
                if (byCertKey) await revokeWithCertKey(opts, c);
                else await client.revokeCertificate(c.leaf, { reason: opts.reason });
                return true;
            }).catch(() => false);
            if (ok) {
                result.revoked.push(c.serial);
                log(`revoked ${c.serial} (reason ${opts.reason}, ${byCertKey ? 'certificate key' : 'account key'})`);
            }
        }
    }
    if (opts.deactivate) {
        // A deactivated account can place no order (RFC 8555 §7.3.6).
        await step('deactivate', async () => {
            const a = await client.updateAccount({ status: 'deactivated' });
            if (a.status !== 'deactivated') throw new Error(`account status ${a.status}`);
            let ordered = true;
            try {
                await client.createOrder({ identifiers: opts.names.map((value) => ({ type: 'dns', value })) });
            } catch (e) {
                ordered = false;
            }
            if (ordered) throw new Error('a deactivated account placed an order');
            log('account deactivated');
        }).catch(() => {});
    }
    finish(0);
}

main().catch((e) => {
    process.stderr.write(`issue.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});
