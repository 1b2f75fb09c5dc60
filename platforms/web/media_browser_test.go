package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	exif "github.com/dsoprea/go-exif/v3"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
)

// giveFile hands the page a file the way a person would: pasted into the message box, dropped on
// the page, or chosen with the picker. The bytes come from the test through JavaScript, so no file
// is written anywhere.
func (v *visitor) giveFile(how, name, mimeType string, data []byte) {
	v.t.Helper()
	deliver := map[string]string{
		"paste":  `document.getElementById('text').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))`,
		"drop":   `document.getElementById('log').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))`,
		"picker": `(() => { const f = document.getElementById('file'); f.files = dt.files; f.dispatchEvent(new Event('change', { bubbles: true })); })()`,
	}[how]
	evalJS[bool](v, fmt.Sprintf(`(() => {
		const bytes = Uint8Array.from(atob(%s), (c) => c.charCodeAt(0));
		const dt = new DataTransfer();
		dt.items.add(new File([bytes], %s, { type: %s }));
		%s;
		return true;
	})()`, js(base64.StdEncoding.EncodeToString(data)), js(name), js(mimeType), deliver))
}

// fetchBytes fetches url from the page (with its origin and its CSP) and returns the status and body.
func (v *visitor) fetchBytes(url string) (int, []byte) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](fmt.Sprintf(`fetch(%s).then(async (r) => {
		const b = new Uint8Array(await r.arrayBuffer());
		let s = '';
		for (const c of b) s += String.fromCharCode(c);
		return [r.status, btoa(s)];
	})`, js(url)), chromedp.EvalAwaitPromise))
	if err != nil || len(res) != 2 {
		v.t.Fatalf("%s: fetch %s: %v", v.name, url, err)
	}
	body, err := base64.StdEncoding.DecodeString(res[1].(string))
	if err != nil {
		v.t.Fatal(err)
	}
	return int(res[0].(float64)), body
}

// TestBrowserMedia: a photo with EXIF GPS pasted by one visitor shows inline for the other, whose
// copy has no EXIF; a file dropped or picked is offered for download under a neutral name; both
// addresses stop working when the room ends.
func TestBrowserMedia(t *testing.T) {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	k := startKumo(t, cfg)
	alice, bob, _ := twoInARoom(t, k)
	// Bob, who joined, sends; alice, the creator, receives and later destroys the room.
	nick := nickOfPage(bob)

	photo := bridgetest.JPEGWithMetadata(t)
	if _, err := exif.SearchAndExtractExif(photo); err != nil {
		t.Fatalf("the test photo has no EXIF: %v", err)
	}
	stripped, _, err := bridge.StripMetadata(photo)
	if err != nil {
		t.Fatal(err)
	}
	bob.do(chromedp.SetValue(chromedp.ID("text"), "my garden"))
	bob.giveFile("paste", "IMG_JohnSmith.jpg", "image/jpeg", photo)
	const lastImg = `[...document.querySelectorAll('#log .kind-relay img.media')].pop()`
	alice.waitJS(lastImg+` !== undefined && `+lastImg+`.complete && `+lastImg+`.naturalWidth === 16`, "the photo shown inline")
	if got := evalJS[string](alice, lastImg+`.closest('.msg').querySelector('.from').textContent`); got != nick {
		t.Errorf("the photo is shown under %q, want %q", got, nick)
	}
	alice.waitRelay(nick, "my garden")
	photoURL := evalJS[string](alice, lastImg+`.getAttribute('src')`)
	code, got := alice.fetchBytes(photoURL)
	if code != 200 || !bytes.Equal(got, stripped) {
		t.Fatalf("the photo's address answered %d with %d bytes, want the %d bytes of the photo without metadata", code, len(got), len(stripped))
	}
	if _, err := exif.SearchAndExtractExif(got); !errors.Is(err, exif.ErrNoExif) {
		t.Error("the photo alice downloads has EXIF")
	}

	files := map[string][]byte{}
	for i, how := range []string{"drop", "picker"} {
		doc := []byte(fmt.Sprintf("%%PDF-1.4 report %d of John Smith", i))
		bob.giveFile(how, "Report of John Smith.pdf", "application/pdf", doc)
		sel := fmt.Sprintf(`[...document.querySelectorAll('#log .kind-relay a.file')][%d]`, i)
		alice.waitJS(sel+` !== undefined`, "the "+how+" file offered for download")
		if name := evalJS[string](alice, sel+`.getAttribute('download')`); name != "file.pdf" {
			t.Errorf("%s: download name %q, want file.pdf", how, name)
		}
		u := evalJS[string](alice, sel+`.getAttribute('href')`)
		if code, got := alice.fetchBytes(u); code != 200 || !bytes.Equal(got, doc) {
			t.Errorf("%s: the file's address answered %d with %q", how, code, got)
		}
		files[u] = doc
	}
	alice.send("/destroy")
	alice.waitKind("notice", "The creator destroyed this room")
	for u := range files {
		if code, _ := alice.fetchBytes(u); code != 404 {
			t.Errorf("%s answered %d after the room ended, want 404", u, code)
		}
	}
	if code, _ := alice.fetchBytes(photoURL); code != 404 {
		t.Errorf("the photo's address answered %d after the room ended, want 404", code)
	}
	for _, v := range []*visitor{alice, bob} {
		var p []string
		for _, m := range v.problems() {
			// The fetches above of addresses that died with the room are the only 404s expected.
			if !strings.Contains(m, "status of 404 (Not Found)") {
				p = append(p, m)
			}
		}
		if len(p) > 0 {
			t.Errorf("%s: browser errors: %q", v.name, p)
		}
	}
}

// TestBrowserMediaWithTelegram: media crosses between a web visitor and a Telegram user (the real
// adapter on the fake Bot API) both ways: a JPEG sent on Telegram as a file, with EXIF GPS, shows
// on the page without it; a photo pasted on the page reaches Telegram as a photo without it; a
// Telegram voice note reaches the page as a download.
func TestBrowserMediaWithTelegram(t *testing.T) {
	fake, k := startKumoWithTelegram(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tara := telegramtest.User{ID: 4242, FirstName: "Tara"}
	wendy := newVisitor(t, k.url, "wendy")
	wendy.do(chromedp.Click(chromedp.ID("btn-newroom")))
	wendy.waitKind("reply", "Your room is open")
	password := wendy.code("Your room is open")
	fake.Inject(telegramtest.Incoming{From: tara, Text: "/join " + password})
	wendy.waitKind("notice", "joined")

	photo := bridgetest.JPEGWithMetadata(t)
	stripped, _, err := bridge.StripMetadata(photo)
	if err != nil {
		t.Fatal(err)
	}
	// Telegram to the page: a JPEG as a file (Telegram keeps its metadata), then a voice note.
	fake.Inject(telegramtest.Incoming{From: tara, Media: "document", File: photo, FileName: "IMG_JohnSmith.jpg", MIME: "image/jpeg", Caption: "as a file"})
	const lastImg = `[...document.querySelectorAll('#log .kind-relay img.media')].pop()`
	wendy.waitJS(lastImg+` !== undefined && `+lastImg+`.complete && `+lastImg+`.naturalWidth === 16`, "Tara's photo inline")
	if code, got := wendy.fetchBytes(evalJS[string](wendy, lastImg+`.getAttribute('src')`)); code != 200 || !bytes.Equal(got, stripped) {
		t.Errorf("the page got %d, %d bytes; want the %d bytes without metadata", code, len(got), len(stripped))
	}
	voice := []byte("OggS fake opus voice note")
	fake.Inject(telegramtest.Incoming{From: tara, Media: "voice", File: voice, MIME: "audio/ogg"})
	const lastFile = `[...document.querySelectorAll('#log .kind-relay a.file')].pop()`
	wendy.waitJS(lastFile+` !== undefined`, "Tara's voice note")
	if name := evalJS[string](wendy, lastFile+`.getAttribute('download')`); name != "voice.ogg" {
		t.Errorf("voice note offered as %q", name)
	}
	if code, got := wendy.fetchBytes(evalJS[string](wendy, lastFile+`.getAttribute('href')`)); code != 200 || !bytes.Equal(got, voice) {
		t.Errorf("the voice note: %d %q", code, got)
	}

	// The page to Telegram: a pasted photo becomes a Telegram photo, without its metadata.
	before := len(fake.Sent(tara.ID))
	wendy.giveFile("paste", "IMG_JohnSmith.jpg", "image/jpeg", photo)
	for n := before + 1; ; n++ {
		sent, err := fake.WaitSent(ctx, tara.ID, n)
		if err != nil {
			t.Fatalf("Tara never got the photo: %v", err)
		}
		if m := sent[n-1]; m.Method == "sendPhoto" {
			if !bytes.Equal(m.FileData, stripped) || m.FileName != "photo.jpg" {
				t.Errorf("Tara got %d bytes named %q; want the %d stripped bytes as photo.jpg", len(m.FileData), m.FileName, len(stripped))
			}
			if _, err := exif.SearchAndExtractExif(m.FileData); !errors.Is(err, exif.ErrNoExif) {
				t.Error("Tara's photo has EXIF")
			}
			break
		}
	}
	if p := wendy.problems(); len(p) > 0 {
		t.Errorf("browser errors: %q", p)
	}
}
