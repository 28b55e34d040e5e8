#!/usr/bin/env python3
# Known-answer vectors for agent/src/ipmi/crypto.rs, computed independently of plinth with
# Python's hmac/hashlib and the cryptography package's AES-CBC: RAKP 2/3 codes, SIK, RAKP 4
# ICV, K1, K2, a packet authentication code and an encrypted payload for suites 17 and 3.
import hmac, hashlib, struct
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
def run(h, ilen):
    pw=b"password"; user=b"admin"; role=0x14
    sidm=struct.pack('<I',0x01020304); sidc=struct.pack('<I',0xa0b0c0d0)
    rm=bytes(range(16)); rc=bytes(range(16,32)); guid=bytes(range(0xa0,0xb0))
    H=lambda k,m: hmac.new(k,m,h).digest()
    r2=H(pw, sidm+sidc+rm+rc+guid+bytes([role,len(user)])+user)
    r3=H(pw, rc+sidm+bytes([role,len(user)])+user)
    sik=H(pw, rm+rc+bytes([role,len(user)])+user)
    r4=H(sik, rm+sidc+guid)[:ilen]
    n=h().digest_size
    k1=H(sik,b"\x01"*n); k2=H(sik,b"\x02"*n)
    signed=bytes.fromhex("06c0d0c0b0a00100000020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fffff0207")
    auth=H(k1,signed)[:ilen]
    payload=bytes.fromhex("2018c881040100")+b"\x7b"
    pad=(16-(len(payload)+1)%16)%16
    plain=payload+bytes(range(1,pad+1))+bytes([pad])
    iv=bytes(range(0xf0,0x100))
    enc=Cipher(algorithms.AES(k2[:16]),modes.CBC(iv)).encryptor()
    ct=iv+enc.update(plain)+enc.finalize()
    for k,v in [("rakp2",r2),("rakp3",r3),("sik",sik),("rakp4",r4),("k1",k1),("k2",k2),("auth",auth),("ct",ct)]:
        print(k, v.hex())
print("suite17"); run(hashlib.sha256,16)
print("suite3"); run(hashlib.sha1,12)
