#!/usr/bin/env node
// issue.js drives an ACME server with the npm package acme-client (pinned
// in package-lock.json): it creates an account with External Account
// Binding, orders a certificate for the names given using dns-01 (the
// challenge hook writes the _acme-challenge TXT record with RFC 2136 through
// `nsupdate`, TSIG-signed), downloads it, reads its ARI renewalInfo (RFC
// 9773), optionally renews it with newOrder "replaces" and revokes it.
//
//   node issue.js --directory https://127.0.0.1:8443/acme/directory \
//     --eab-kid eab_… --eab-hmac … [--profile server-dv] [--out DIR] \
//     [--renew] [--revoke [--reason N]] name…
//
// DNS: --dns-server host:port (the authoritative server taking updates;
// default $CERTDESK_DEV_DNS_SERVER), --tsig hmac-sha256:name:secret
// (default $CERTDESK_DEV_DNS_TSIG) and --resolver host:port (waited on
// until it sees the record; default $CERTDESK_DCV_RESOLVER). Trust the
// server's TLS certificate with NODE_EXTRA_CA_CERTS.
//
// Progress goes to stderr; stdout gets one JSON object at the end:
// {account, certificates: [{serial, certID, pem, suggestedWindow,
// retryAfter, replaces}], revoked}.
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
            default:
                if (a.startsWith('--')) usage(`unknown flag ${a}`);
                o.names.push(a.toLowerCase());
        }
    }
    if (!o.directory || !o.kid || !o.hmac) usage('--directory, --eab-kid and --eab-hmac are required');
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

function get(url) {
    return new Promise((resolve, reject) => {
        https.get(url, (res) => {
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
    return { id: `${b64url(Buffer.from(aki.keyId, 'hex'))}.${b64url(Buffer.from(hex, 'hex'))}`, serial: hex.replace(/^(00)+/, '') };
}

async function issueOnce(client, opts, replaces) {
    const order = { identifiers: opts.names.map((value) => ({ type: 'dns', value })) };
    if (opts.profile) order.profile = opts.profile;
    if (replaces) order.replaces = replaces;
    const o = await client.createOrder(order);
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
            await client.completeChallenge(ch);
            await client.waitForValidStatus(ch);
        } finally {
            nsupdate(opts, [`update delete ${rr} TXT "${value}"`]);
        }
    }
    const [key, csr] = await acme.crypto.createCsr({ altNames: opts.names }, await acme.crypto.createPrivateEcdsaKey());
    const done = await client.finalizeOrder(o, csr);
    const chain = await client.getCertificate(done);
    const leaf = acme.crypto.splitPemChain(chain)[0];
    const id = certID(leaf);
    log(`issued serial ${id.serial}, certID ${id.id}`);
    return { chain, leaf, key, ...id };
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

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const client = new acme.Client({
        directoryUrl: opts.directory,
        accountKey: await acme.crypto.createPrivateEcdsaKey(),
        externalAccountBinding: { kid: opts.kid, hmacKey: opts.hmac },
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const result = { account: client.getAccountUrl(), certificates: [], revoked: [] };
    log(`account ${result.account}`);

    const issued = [];
    issued.push(await issueOnce(client, opts, ''));
    if (opts.renew) issued.push(await issueOnce(client, opts, issued[0].id));
    for (const [i, c] of issued.entries()) {
        const ari = await renewalInfo(opts, c.id);
        log(`renewalInfo ${c.id}: ${ari.suggestedWindow.start} – ${ari.suggestedWindow.end}, Retry-After ${ari.retryAfter}`);
        result.certificates.push({ serial: c.serial, certID: c.id, pem: c.leaf, ...ari, replaces: i > 0 ? issued[0].id : '' });
        if (opts.out) {
            fs.mkdirSync(opts.out, { recursive: true });
            fs.writeFileSync(path.join(opts.out, `cert${i}.pem`), c.chain);
            fs.writeFileSync(path.join(opts.out, `cert${i}.key`), c.key, { mode: 0o600 });
        }
    }
    if (opts.revoke) {
        for (const c of issued) {
            await client.revokeCertificate(c.leaf, { reason: opts.reason });
            result.revoked.push(c.serial);
            log(`revoked ${c.serial} (reason ${opts.reason})`);
        }
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e) => {
    process.stderr.write(`issue.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});
