package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

type subscriber struct {
	Name  string
	Email string
}

func TestRoundTripHidesContent(t *testing.T) {
	c, err := ParseKeys(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.KeyID(), "k") || len(c.KeyID()) != 9 {
		t.Fatalf("derived key id %q", c.KeyID())
	}
	dc := c.DataConverter()
	in := subscriber{Name: "山田太郎", Email: "taro@example.jp"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if !IsEncrypted(p) || string(p.Metadata[MetadataKeyID]) != c.KeyID() {
		t.Fatalf("metadata %v", p.Metadata)
	}
	if bytes.Contains(p.Data, []byte("taro@example.jp")) || bytes.Contains(p.Data, []byte("山田")) {
		t.Fatal("clear text in the encrypted payload")
	}
	var out subscriber
	if err := dc.FromPayload(p, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("got %+v", out)
	}
	// Two encodings of the same value differ (random nonce).
	p2, _ := dc.ToPayload(in)
	if bytes.Equal(p.Data, p2.Data) {
		t.Fatal("nonce reused")
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	c, _ := ParseKeys(newKey(t))
	plain, _ := converter.GetDefaultDataConverter().ToPayload(map[string]string{"decision": "approve"})
	out, err := c.Decode([]*commonpb.Payload{plain})
	if err != nil || out[0] != plain {
		t.Fatalf("plain payload changed: %v %v", out, err)
	}
}

func TestRotationAndRefusals(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	old, err := ParseKeys("v1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := old.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})

	ring, err := ParseKeys("v1:" + k1 + ", v2:" + k2)
	if err != nil {
		t.Fatal(err)
	}
	if ring.KeyID() != "v2" {
		t.Fatalf("newest key must encrypt, got %s", ring.KeyID())
	}
	dec, err := ring.Decode(enc)
	if err != nil || string(dec[0].Data) != `"x"` {
		t.Fatalf("old payload under the ring: %v %v", dec, err)
	}

	onlyNew, _ := ParseKeys("v2:" + k2)
	if _, err := onlyNew.Decode(enc); err == nil || !strings.Contains(err.Error(), `"v1"`) {
		t.Fatalf("unknown key: %v", err)
	}

	tampered := &commonpb.Payload{Metadata: enc[0].Metadata, Data: append([]byte(nil), enc[0].Data...)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	if _, err := ring.Decode([]*commonpb.Payload{tampered}); err == nil {
		t.Fatal("tampered payload decrypted")
	}

	// Same bytes under another id (a key relabelled) must not decrypt: the
	// key id is associated data.
	relabelled, _ := ParseKeys("v3:" + k1)
	moved := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(Encoding), MetadataKeyID: []byte("v3")}, Data: enc[0].Data}
	if _, err := relabelled.Decode([]*commonpb.Payload{moved}); err == nil {
		t.Fatal("payload decrypted under another key id")
	}

	for _, bad := range []string{"", "short", "v1:" + base64.StdEncoding.EncodeToString([]byte("16 bytes only!!!")), "v1:" + k1 + ",v1:" + k2, "bad id:" + k1} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
}

func TestFailureMessagesAreEncrypted(t *testing.T) {
	c, _ := ParseKeys(newKey(t))
	fc := c.FailureConverter()
	f := fc.ErrorToFailure(converterError("refused for taro@example.jp"))
	if strings.Contains(f.GetMessage(), "taro@") {
		t.Fatalf("failure message in clear: %q", f.GetMessage())
	}
	if err := fc.FailureToError(f); err == nil || !strings.Contains(err.Error(), "taro@example.jp") {
		t.Fatalf("failure does not decode: %v", err)
	}
}

type converterError string

func (e converterError) Error() string { return string(e) }
