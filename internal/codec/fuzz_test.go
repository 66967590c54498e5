package codec

import (
	"bytes"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Fixed test keys (base64 of 32 bytes): the fuzzer must be able to reach
// well-formed ciphertexts, so the seeds are made with the same keys.
const (
	fuzzKeyOld = "old:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	fuzzKeyNew = "new:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)

func fuzzCodec(tb testing.TB) *Codec {
	c, err := ParseKeys(fuzzKeyOld + "," + fuzzKeyNew)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// FuzzDecode: arbitrary payloads (wire bytes of a Payloads message, as the
// codec server and a worker receive them) go through Decode. Decode never
// panics; a payload that is not marked encrypted passes through unchanged; a
// marked one either decrypts (under a key the ring holds) or is an error.
func FuzzDecode(f *testing.F) {
	c := fuzzCodec(f)
	dc := converter.GetDefaultDataConverter()
	plain, _ := dc.ToPayloads("山田太郎", map[string]any{"email": "taro@example.jp"}, 42, nil, []byte{0, 1, 2})
	enc, err := c.Encode(plain.Payloads)
	if err != nil {
		f.Fatal(err)
	}
	for _, ps := range [][]*commonpb.Payload{plain.Payloads, enc, enc[:1], {}} {
		b, _ := proto.Marshal(&commonpb.Payloads{Payloads: ps})
		f.Add(b)
	}
	tampered := proto.Clone(enc[0]).(*commonpb.Payload)
	tampered.Data[len(tampered.Data)-1] ^= 1
	short := proto.Clone(enc[0]).(*commonpb.Payload)
	short.Data = short.Data[:20]
	unknown := proto.Clone(enc[0]).(*commonpb.Payload)
	unknown.Metadata[MetadataKeyID] = []byte("gone")
	for _, p := range []*commonpb.Payload{tampered, short, unknown} {
		b, _ := proto.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}})
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, wire []byte) {
		var in commonpb.Payloads
		if proto.Unmarshal(wire, &in) != nil {
			return
		}
		out, err := c.Decode(in.Payloads)
		if err != nil {
			return
		}
		if len(out) != len(in.Payloads) {
			t.Fatalf("Decode returned %d payloads for %d", len(out), len(in.Payloads))
		}
		for i, p := range in.Payloads {
			if !IsEncrypted(p) && out[i] != p {
				t.Fatalf("payload %d is not encrypted but Decode changed it", i)
			}
			if IsEncrypted(p) {
				if _, ok := c.keys[string(p.Metadata[MetadataKeyID])]; !ok {
					t.Fatalf("payload %d decrypted under key %q, which the ring does not hold", i, p.Metadata[MetadataKeyID])
				}
			}
		}
	})
}

// FuzzRoundTrip: whatever a workflow sends, Encode then Decode gives it
// back exactly, and the ciphertext does not contain the data in clear.
func FuzzRoundTrip(f *testing.F) {
	c := fuzzCodec(f)
	f.Add([]byte(`"taro@example.jp"`), "json/plain")
	f.Add([]byte{}, "binary/null")
	f.Add([]byte{0xff, 0x00}, "binary/plain")
	f.Add([]byte("x"), Encoding)
	f.Fuzz(func(t *testing.T, data []byte, encoding string) {
		p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(encoding)}, Data: data}
		enc, err := c.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		if !IsEncrypted(enc[0]) || string(enc[0].Metadata[MetadataKeyID]) != c.KeyID() {
			t.Fatalf("Encode produced metadata %v", enc[0].Metadata)
		}
		if len(data) >= 8 && bytes.Contains(enc[0].Data, data) {
			t.Fatal("ciphertext contains the plaintext")
		}
		dec, err := c.Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(dec[0], p) {
			t.Fatalf("round trip changed the payload: %v -> %v", p, dec[0])
		}
	})
}
