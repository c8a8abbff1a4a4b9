// Request signing, as api/sign.go does it: the lower-case hex HMAC-SHA256,
// keyed with the key's secret, of six lines joined by "\n": the method,
// the path, the raw query, the timestamp (Unix ms), the nonce, and the
// lower-case hex SHA-256 of the body. WebCrypto needs a secure context
// (HTTPS, or http://localhost / 127.0.0.1).

const encoder = new TextEncoder();

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

// sha256Hex is the hex SHA-256 of bytes (a Uint8Array).
export async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

// canonical is the string a signature covers (api.Canonical).
export function canonical(method, path, query, timestamp, nonce, bodyHash) {
  return [method.toUpperCase(), path, query, String(timestamp), nonce, bodyHash].join("\n");
}

// importSecret makes an HMAC key of a secret that cannot be read back
// out of the CryptoKey.
export function importSecret(secret) {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

// sign is the hex signature of a canonical string.
export async function sign(key, canonicalString) {
  return hex(await crypto.subtle.sign("HMAC", key, encoder.encode(canonicalString)));
}

// newNonce is 32 random hex characters (the server takes 16 to 64).
export function newNonce() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return hex(b);
}

// signedHeaders are the BX- headers of a request signed at timestamp.
export async function signedHeaders(keyID, key, method, path, query, body, timestamp) {
  const nonce = newNonce();
  const signature = await sign(key, canonical(method, path, query, timestamp, nonce, await sha256Hex(body)));
  return {
    "BX-Key": keyID,
    "BX-Timestamp": String(timestamp),
    "BX-Nonce": nonce,
    "BX-Signature": signature,
  };
}
