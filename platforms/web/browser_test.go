package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
	"github.com/kumo-chat/kumo/lightning"
	"github.com/kumo-chat/kumo/platforms/telegram"
	"github.com/kumo-chat/kumo/platforms/telegram/telegramtest"
	"github.com/kumo-chat/kumo/platforms/web"
)

// chrome is the one headless Chromium of this test package, started by the first browser test and
// stopped by TestMain.
var chrome struct {
	once   sync.Once
	ctx    context.Context
	err    error
	cancel []context.CancelFunc
	dir    string
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(chrome.cancel) - 1; i >= 0; i-- {
		chrome.cancel[i]()
	}
	if chrome.dir != "" {
		// Chromium's children may still write there for a moment after it stops.
		for range 50 {
			if os.RemoveAll(chrome.dir) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// chromiumPath finds Debian's chromium, installing it with the project's tool script when missing.
func chromiumPath() (string, error) {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	script := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), ".ci", "tools.sh")
	cmd := exec.Command(script, "chromium")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s chromium: %w", script, err)
	}
	return exec.LookPath("chromium")
}

func browser(t *testing.T) context.Context {
	t.Helper()
	chrome.once.Do(func() {
		path, err := chromiumPath()
		if err != nil {
			chrome.err = err
			return
		}
		chrome.dir, err = os.MkdirTemp("", "kumo-web-chromium-")
		if err != nil {
			chrome.err = err
			return
		}
		// Without the background-networking flags Chromium stalls on a closed network.
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(path),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-default-apps", true),
			chromedp.Flag("disable-extensions", true),
			chromedp.Flag("no-default-browser-check", true),
			chromedp.UserDataDir(chrome.dir),
			chromedp.WindowSize(1000, 900),
		)
		ctx, cancelBrowser := chromedp.NewContext(alloc)
		chrome.cancel = append(chrome.cancel, cancelAlloc, cancelBrowser)
		// The browser lives as long as the context of its first action: no timeout here.
		if err := chromedp.Do(ctx); err != nil {
			chrome.err = fmt.Errorf("starting chromium: %w", err)
			return
		}
		chrome.ctx = ctx
	})
	if chrome.err != nil {
		t.Fatal(chrome.err)
	}
	return chrome.ctx
}

// kumo is the whole product in one test: the core, the development payment backend, and the web
// platform served over HTTP.
type kumo struct {
	url  string
	dev  *lightning.Dev
	logs *bridgetest.LogBuffer
	web  *web.Adapter
	b    *bridge.Bridge
}

func startKumo(t testing.TB, cfg bridge.Config, extra ...bridge.Platform) *kumo {
	t.Helper()
	return startKumoWith(t, cfg, nil, extra...)
}

// startKumoWithTelegram runs a kumo with free rooms on the web and on Telegram: the real adapter,
// polling a fake Bot API, which it returns.
func startKumoWithTelegram(t testing.TB) (*telegramtest.Server, *kumo) {
	t.Helper()
	fake := telegramtest.New(t)
	tg, err := telegram.New(telegram.Config{Token: fake.Token(), APIURL: fake.URL()},
		slog.New(slog.DiscardHandler), telegram.WithPolling(2*time.Second, &http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	return fake, startKumo(t, cfg, tg)
}

// startKumoWith is startKumo with options for the web platform.
func startKumoWith(t testing.TB, cfg bridge.Config, opts []web.Option, extra ...bridge.Platform) *kumo {
	t.Helper()
	logs := &bridgetest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dev := lightning.NewDev(log)
	p, err := web.New(web.Config{Enabled: true}, log, append([]web.Option{web.WithSimulatedPayments(dev.Pay)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(cfg, dev, log, append([]bridge.Platform{p}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close) // after the bridge has stopped: cleanups run last-registered first
	bridgetest.Run(t, b)
	return &kumo{url: srv.URL, dev: dev, logs: logs, web: p, b: b}
}

// visitor is one person with their own browser context (no shared storage with the others).
type visitor struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	dialogs []page.DialogType // the browser's own dialogs (beforeunload...), each accepted
	cancel  context.CancelFunc
}

// twoInARoom opens two pages on k: "alice" opens a room, whose password it returns, and "bob"
// joins it.
func twoInARoom(t *testing.T, k *kumo) (alice, bob *visitor, password string) {
	t.Helper()
	alice = newVisitor(t, k.url, "alice")
	bob = newVisitor(t, k.url, "bob")
	alice.do(chromedp.Click(chromedp.ID("btn-newroom")))
	alice.waitKind("reply", "Your room is open")
	password = alice.code("Your room is open")
	bob.do(chromedp.SetValue(chromedp.ID("join-password"), password), chromedp.Click(chromedp.ID("btn-join")))
	bob.waitKind("reply", "You joined the room")
	return alice, bob, password
}

// newVisitor opens the page in a tab of its own; setup (a viewport, a colour scheme) runs first.
func newVisitor(t *testing.T, url, name string, setup ...chromedp.Action[chromedp.Void]) *visitor {
	t.Helper()
	v := openPage(t, url, name, setup...)
	v.waitJS(`document.getElementById('status').dataset.state === 'connected'`, "connected")
	return v
}

// openPage opens the page in a new browser context without waiting for it to connect; setup runs
// before the page loads.
func openPage(t *testing.T, url, name string, setup ...chromedp.Action[chromedp.Void]) *visitor {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	v := &visitor{t: t, name: name, ctx: ctx, cancel: cancel}
	if err := chromedp.Do(ctx); err != nil { // opens the tab, for as long as ctx lives
		t.Fatalf("%s: new tab: %v", name, err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for d, err := range dialogs {
			if err != nil {
				return
			}
			v.mu.Lock()
			v.dialogs = append(v.dialogs, d.Type)
			v.mu.Unlock()
			// Accepted from here: the action that opened it (a reload) waits for it to close.
			_ = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return err
			}))
		}
	}()
	if len(setup) > 0 {
		v.do(setup...)
	}
	msgs := chromedp.Console(ctx) // subscribed now, before the page loads
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			v.mu.Lock()
			v.console = append(v.console, m)
			v.mu.Unlock()
		}
	}()
	v.do(chromedp.Navigate(url))
	return v
}

func (v *visitor) do(steps ...chromedp.Action[chromedp.Void]) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		v.t.Fatalf("%s: %v\npage log:\n%s", v.name, err, v.pageLog())
	}
}

// waitJS waits until expr is true in the page.
func (v *visitor) waitJS(expr, what string) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(25*time.Second))); err != nil {
		v.t.Fatalf("%s: waiting for %s: %v\npage log:\n%s", v.name, what, err, v.pageLog())
	}
}

func evalJS[T any](v *visitor, expr string) T {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		v.t.Fatalf("%s: evaluating %s: %v", v.name, expr, err)
	}
	return res
}

// pageLog is the chat as the visitor sees it, for failure messages.
func (v *visitor) pageLog() string {
	ctx, cancel := context.WithTimeout(v.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('log').innerText + '\nstatus: ' + document.getElementById('status').textContent`))
	return s
}

// send types text into the composer and presses the Send button.
func (v *visitor) send(text string) {
	v.t.Helper()
	v.do(chromedp.SetValue(chromedp.ID("text"), text), chromedp.Click(chromedp.ID("send")))
}

func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitRelay waits for from's words exactly as sent.
func (v *visitor) waitRelay(from, text string) {
	v.t.Helper()
	v.waitJS(fmt.Sprintf(`[...document.querySelectorAll('#log .kind-relay')].some(m =>
		m.querySelector('.from').textContent === %s && m.querySelector('.text').textContent === %s)`, js(from), js(text)),
		fmt.Sprintf("%s's message %q", from, text))
}

// waitKind waits for a message of that kind whose text contains part, and returns its text.
func (v *visitor) waitKind(kind, part string) string {
	v.t.Helper()
	expr := fmt.Sprintf(`[...document.querySelectorAll('#log .kind-%s .text')].some(e => e.textContent.includes(%s))`, kind, js(part))
	v.waitJS(expr, fmt.Sprintf("a %s containing %q", kind, part))
	return evalJS[string](v, fmt.Sprintf(`[...document.querySelectorAll('#log .kind-%s .text')].filter(e => e.textContent.includes(%s)).pop().textContent`, kind, js(part)))
}

// problems lists uncaught exceptions and browser errors (a CSP violation is one).
func (v *visitor) problems() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, m := range v.console {
		if m.IsException() || m.Type == "error" || m.Source == "security" {
			out = append(out, m.String())
		}
	}
	return out
}

func (v *visitor) screenshot(dir, name string, sel string) string {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err != nil {
		v.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		v.t.Fatal(err)
	}
	v.t.Logf("screenshot: %s", path)
	// A copy outlives the test's temp dir, for people to look at.
	if os.MkdirAll("/tmp/kumo-screens", 0o755) == nil {
		_ = os.WriteFile(filepath.Join("/tmp/kumo-screens", name), png, 0o644)
	}
	return path
}

// code is what the latest reply containing part shows in its copyable box (a password, a key).
func (v *visitor) code(part string) string {
	v.t.Helper()
	return evalJS[string](v, fmt.Sprintf(`[...document.querySelectorAll('#log .kind-reply')].filter(m =>
		m.querySelector('.text').textContent.includes(%s)).pop().querySelector('.code code').textContent`, js(part)))
}

// setNick chooses a pseudonym with the page's Name control.
func (v *visitor) setNick(name string) {
	v.t.Helper()
	v.do(chromedp.Click(chromedp.ID("btn-nick-open")), chromedp.WaitVisible(chromedp.ID("nick-name")),
		chromedp.SetValue(chromedp.ID("nick-name"), name), chromedp.Click(chromedp.ID("btn-nick")))
}

// confirm answers the page's own confirmation dialog.
func (v *visitor) confirm(yes bool) {
	v.t.Helper()
	button := "confirm-no"
	if yes {
		button = "confirm-yes"
	}
	v.do(chromedp.WaitVisible(chromedp.ID(button)), chromedp.Click(chromedp.ID(button)))
	v.waitJS(`!document.getElementById('confirm').open`, "the dialog to close")
}

// browserDialogs lists the browser's own dialogs the page opened so far.
func (v *visitor) browserDialogs() []page.DialogType {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]page.DialogType(nil), v.dialogs...)
}

// pressEnter types Enter as a keyboard does: one keyDown that carries its text, so the page's
// preventDefault stops the newline (chromedp's SendKeys sends the text as a separate char event).
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
			p := input.DispatchKeyEventParams{Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
			if typ == input.DispatchKeyEventTypeKeyDown {
				p.Text, p.UnmodifiedText = "\r", "\r"
			}
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, p); err != nil {
				return err
			}
		}
		return nil
	})
}

func waitState(t *testing.T, dev *lightning.Dev, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := dev.State(id)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice state %q (%v), want %q", got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBrowserPaidRoom: one visitor opens a room and pays its invoice with the simulated payment,
// another joins with the password, and they talk.
func TestBrowserPaidRoom(t *testing.T) {
	k := startKumo(t, bridge.DefaultConfig())
	shots := t.TempDir()
	alice := newVisitor(t, k.url, "alice")
	bob := newVisitor(t, k.url, "bob")

	// Alice asks for a room and sees the invoice.
	alice.do(chromedp.Click(chromedp.ID("btn-newroom")), chromedp.WaitVisible(chromedp.CSS(".kind-invoice .simulate-pay")))
	alice.waitJS(`(() => { const q = document.querySelector('.kind-invoice img.qr'); return q && q.complete && q.naturalWidth > 100; })()`, "the QR image to load")
	inv := evalJS[map[string]string](alice, `(() => { const c = document.querySelector('.kind-invoice');
		return { id: c.querySelector('.invoice').dataset.invoice, amount: c.querySelector('.amount').textContent,
			countdown: c.querySelector('.countdown').textContent, bolt11: c.querySelector('.bolt11 code').textContent,
			button: c.querySelector('.simulate-pay').textContent, caption: c.querySelector('.caption').textContent,
			wallet: c.querySelector('.open-wallet').getAttribute('href') }; })()`)
	if inv["amount"] != "10,000 sat" {
		t.Errorf("amount %q", inv["amount"])
	}
	if !regexp.MustCompile(`^Expires in 1[45]:\d\d$`).MatchString(inv["countdown"]) {
		t.Errorf("countdown %q, want about 15 minutes", inv["countdown"])
	}
	if !strings.HasPrefix(inv["bolt11"], "lnbcrt") || inv["wallet"] != "lightning:"+inv["bolt11"] {
		t.Errorf("bolt11 %q, wallet link %q", inv["bolt11"], inv["wallet"])
	}
	if inv["button"] != "Simulate payment" {
		t.Errorf("simulate button says %q", inv["button"])
	}
	if !strings.Contains(inv["caption"], "10,000 sat") {
		t.Errorf("caption %q", inv["caption"])
	}
	waitState(t, k.dev, inv["id"], "OPEN")
	alice.screenshot(shots, "invoice.png", ".kind-invoice")
	alice.screenshot(shots, "invoice-page.png", "")

	// Alice pays (simulated): the room opens, she gets its password and sees the time left.
	alice.do(chromedp.Click(chromedp.CSS(".kind-invoice .simulate-pay")))
	alice.waitKind("reply", "Your room is open")
	waitState(t, k.dev, inv["id"], "SETTLED")
	password := alice.code("Your room is open")
	if password == "" {
		t.Fatal("no password shown")
	}
	alice.waitJS(`document.querySelector('.invoice').classList.contains('paid')`, "the invoice to show as paid")
	alice.waitJS(`!document.getElementById('time-left').hidden && /^Self-destructs in 2[34]:\d\d:\d\d$/.test(document.getElementById('time-left').textContent)`, "the time left")

	// Bob joins with the password; both pick a nickname.
	bob.do(chromedp.SetValue(chromedp.ID("join-password"), password), chromedp.Click(chromedp.ID("btn-join")))
	bob.waitKind("reply", "You joined the room")
	alice.waitKind("notice", "joined")
	bob.waitJS(`!document.getElementById('time-left').hidden`, "bob's time left")
	alice.setNick("Alice")
	alice.waitKind("reply", "You are now Alice")
	bob.waitKind("notice", "is now Alice")
	bob.setNick("Bob")
	bob.waitKind("reply", "You are now Bob")
	alice.waitKind("notice", "is now Bob")

	// Words, emoji and any script flow both ways, exactly.
	fromBob := "Hello Alice 👋🏽 café, 日本語, עברית, family 👨‍👩‍👧 and 🇯🇵"
	bob.send(fromBob)
	alice.waitRelay("Bob", fromBob)
	fromAlice := "Hi Bob! 🎉🦄 multi\nline"
	alice.do(chromedp.SetValue(chromedp.ID("text"), fromAlice), chromedp.Focus(chromedp.ID("text")), pressEnter())
	bob.waitRelay("Alice", fromAlice)
	if got := evalJS[string](alice, `document.getElementById('text').value`); got != "" {
		t.Errorf("composer not cleared after Enter: %q", got)
	}

	// Markup is text: nothing a member sends runs or becomes an element.
	attack := `<script>window.kumoPwned = 1</script><img src=x onerror="window.kumoPwned = 2"><b>bold?</b>`
	bob.send(attack)
	alice.waitRelay("Bob", attack)
	for _, v := range []*visitor{alice, bob} {
		if pwned := evalJS[bool](v, `window.kumoPwned !== undefined`); pwned {
			t.Errorf("%s: the message's script ran", v.name)
		}
		if n := evalJS[int](v, `document.querySelectorAll('#log script, #log b, #log img:not(.qr)').length`); n != 0 {
			t.Errorf("%s: a message became %d element(s)", v.name, n)
		}
	}
	alice.send("Lovely. See you in the next room 👋")
	bob.waitRelay("Alice", "Lovely. See you in the next room 👋")
	// Her own words show on her page too, as hers; commands do not.
	alice.waitJS(`[...document.querySelectorAll('#log .kind-self .text')].map(e => e.textContent).join('|') === `+
		js(fromAlice+"|Lovely. See you in the next room 👋"), "alice's own messages")
	alice.screenshot(shots, "conversation-alice.png", "")
	bob.screenshot(shots, "conversation-bob.png", "")

	// Room info is answered and keeps the countdown.
	bob.do(chromedp.Click(chromedp.ID("btn-info")))
	bob.waitKind("reply", "This room self-destructs in")

	// Bob leaves: his page shows no room and nothing of it but the final notice; Alice is told, and
	// her page keeps the conversation.
	bob.do(chromedp.Click(chromedp.ID("btn-leave")))
	bob.confirm(true)
	bob.waitKind("notice", "You left the room")
	bob.waitJS(`document.getElementById('time-left').hidden && document.body.dataset.room === 'out'`, "bob out of the room")
	if n := evalJS[int](bob, `document.querySelectorAll('#log .msg').length`); n != 1 {
		t.Errorf("bob's page shows %d messages after he left, want the final notice alone:\n%s", n, bob.pageLog())
	}
	alice.waitKind("notice", "Bob left")
	if n := evalJS[int](alice, `document.querySelectorAll('#log .kind-relay, #log .kind-self').length`); n == 0 {
		t.Errorf("alice's conversation was wiped when bob left")
	}

	for _, v := range []*visitor{alice, bob} {
		if p := v.problems(); len(p) > 0 {
			t.Errorf("%s: browser errors: %q", v.name, p)
		}
		if kept := evalJS[string](v, `document.cookie + localStorage.length + sessionStorage.length`); kept != "00" {
			t.Errorf("%s: the browser keeps something (cookie + local + session storage: %q)", v.name, kept)
		}
	}
	// A reload is a new visitor in no room: the page never stored how to resume its session.
	alice.do(chromedp.Reload())
	alice.waitJS(`document.getElementById('status').dataset.state === 'connected' && document.body.dataset.room === 'out' && document.querySelectorAll('#log .msg').length === 0`, "a fresh page")
	for _, secret := range []string{password, "café", "kumoPwned", "Lovely"} {
		if strings.Contains(k.logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestBrowserSelfDestruct: a short-lived room ends and both members see it.
func TestBrowserSelfDestruct(t *testing.T) {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0 // free: the room opens at once
	cfg.Rooms.Lifetime = 6 * time.Second
	k := startKumo(t, cfg)
	alice := newVisitor(t, k.url, "alice")
	bob := newVisitor(t, k.url, "bob")
	alice.do(chromedp.Click(chromedp.ID("btn-newroom")))
	alice.waitKind("reply", "Your room is open")
	if n := evalJS[int](alice, `document.querySelectorAll('.kind-invoice').length`); n != 0 {
		t.Errorf("a free room showed %d invoice(s)", n)
	}
	alice.waitJS(`/^Self-destructs in 0:0[0-6]$/.test(document.getElementById('time-left').textContent)`, "a seconds countdown")
	password := alice.code("Your room is open")
	bob.do(chromedp.SetValue(chromedp.ID("join-password"), password), chromedp.Click(chromedp.ID("btn-join")))
	bob.waitKind("reply", "You joined the room")
	bob.send("bob was here")
	alice.waitRelay(nickOfPage(bob), "bob was here")
	// Count what the wipe removes before the final notice arrives: everything the page showed of the
	// room (bob's own line too), removed by kumo's deletions, not only by the page clearing itself.
	const observe = `(() => {
		const log = document.getElementById('log');
		window.kumoShown = log.children.length;
		window.kumoRemoved = 0;
		window.kumoFinal = false;
		new MutationObserver((ms) => ms.forEach((m) => {
			if (!window.kumoFinal) window.kumoRemoved += m.removedNodes.length;
			m.addedNodes.forEach((n) => { if (n.textContent.includes('self-destructed')) window.kumoFinal = true; });
		})).observe(log, { childList: true });
		return true;
	})()`
	for _, v := range []*visitor{alice, bob} {
		evalJS[bool](v, observe)
	}
	for _, v := range []*visitor{alice, bob} {
		v.waitKind("notice", "This room has self-destructed")
		v.waitJS(`document.getElementById('time-left').hidden && document.body.dataset.room === 'out'`, "no room")
		if left := evalJS[int](v, `document.querySelectorAll('#log .msg').length`); left != 1 {
			t.Errorf("%s's page shows %d messages after the room ended, want only the final notice:\n%s", v.name, left, v.pageLog())
		}
		if shown, removed := evalJS[int](v, `window.kumoShown`), evalJS[int](v, `window.kumoRemoved`); shown < 2 || removed != shown {
			t.Errorf("%s: the wipe removed %d of the %d messages the page showed before the final notice:\n%s", v.name, removed, shown, v.pageLog())
		}
	}
	// The room is gone: its password opens nothing.
	bob.do(chromedp.SetValue(chromedp.ID("join-password"), password), chromedp.Click(chromedp.ID("btn-join")))
	bob.waitKind("reply", "No live room has that password")
	for _, v := range []*visitor{alice, bob} {
		if p := v.problems(); len(p) > 0 {
			t.Errorf("%s: browser errors: %q", v.name, p)
		}
	}
}

// nickOfPage is the visitor's pseudonym, from the page's own line of it.
func nickOfPage(v *visitor) string {
	v.t.Helper()
	text := evalJS[string](v, `[...document.querySelectorAll('#log .kind-reply .text')].map(e => e.textContent).find(t => t.includes('You joined the room as')) || ''`)
	m := regexp.MustCompile(`You joined the room as (.+?)\. `).FindStringSubmatch(text)
	if m == nil {
		v.t.Fatalf("%s: no pseudonym in %q", v.name, text)
	}
	return m[1]
}

// TestBrowserWithTelegram: a web visitor and a Telegram user (the real adapter, through the fake Bot
// API) share a room and talk both ways.
func TestBrowserWithTelegram(t *testing.T) {
	fake, k := startKumoWithTelegram(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tara := telegramtest.User{ID: 4242, FirstName: "Tara"}
	// waitTelegram waits for a message to Tara whose visible text contains part.
	seen := 0
	waitTelegram := func(part string) string {
		t.Helper()
		for {
			sent, err := fake.WaitSent(ctx, tara.ID, seen+1)
			if err != nil {
				t.Fatalf("waiting for %q on Telegram: %v; got %+v", part, err, sent)
			}
			for _, m := range sent[seen:] {
				seen++
				if strings.Contains(m.Text, part) {
					return m.Text
				}
			}
		}
	}

	wendy := newVisitor(t, k.url, "wendy")
	wendy.do(chromedp.Click(chromedp.ID("btn-newroom")))
	wendy.waitKind("reply", "Your room is open")
	password := wendy.code("Your room is open")
	wendy.setNick("Wendy")
	wendy.waitKind("reply", "You are now Wendy")

	fake.Inject(telegramtest.Incoming{From: tara, Text: "/join " + password})
	waitTelegram("You joined the room")
	wendy.waitKind("notice", "joined")
	fake.Inject(telegramtest.Incoming{From: tara, Text: "/nick Tara"})
	waitTelegram("You are now Tara")
	wendy.waitKind("notice", "is now Tara")

	fromTelegram := "Hi from Telegram 🚀 <b>not bold</b> & ünïcödé"
	fake.Inject(telegramtest.Incoming{From: tara, Text: fromTelegram})
	wendy.waitRelay("Tara", fromTelegram)

	fromWeb := "Hello Telegram 🌸 <i>plain</i> 日本"
	wendy.send(fromWeb)
	if got := waitTelegram(fromWeb); !strings.Contains(got, "Wendy") {
		t.Errorf("Telegram shows %q, want it from Wendy", got)
	}
	if p := wendy.problems(); len(p) > 0 {
		t.Errorf("browser errors: %q", p)
	}
}

// startWeb runs the web platform alone, with in as its bridge: what visitors send arrives there, and
// the test speaks to them with the platform's own SendText.
func startWeb(t *testing.T, cfg web.Config) (*web.Adapter, string, chan bridge.Inbound) {
	t.Helper()
	p, err := web.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close) // runs after Run has returned (registered first)
	in := make(chan bridge.Inbound, 16)
	bridgetest.Background(t, "web", func(ctx context.Context) error {
		return p.Run(ctx, bridge.HandlerFunc(func(_ context.Context, m bridge.Inbound) { in <- m }))
	})
	return p, srv.URL, in
}

// A member's line that reads like a notice is shown in the member-message style, inside their
// bubble under their name; only the real notice has the notice style.
func TestBrowserForgedNoticeLooksLikeMemberText(t *testing.T) {
	p, url, in := startWeb(t, web.Config{Enabled: true})
	v := newVisitor(t, url, "reader")
	v.send("hello")
	var from bridge.Addr
	select {
	case m := <-in:
		from = m.From
	case <-time.After(30 * time.Second):
		t.Fatal("the visitor's text never arrived")
	}
	forged := "hi\n🔔 Proud Wolf left. 1 member."
	for _, m := range []bridge.Message{
		{Kind: bridge.KindRelay, From: "Calm Otter", Text: forged},
		{Kind: bridge.KindNotice, Text: "Red Owl left. 1 member."},
	} {
		if _, err := p.SendText(context.Background(), from, m); err != nil {
			t.Fatal(err)
		}
	}
	v.waitRelay("Calm Otter", forged)
	v.waitKind("notice", "Red Owl left.")
	type look struct {
		Kind, Style, Background, Bubble, Quote string
		Notices                                int
	}
	got := evalJS[look](v, `(() => {
		const forged = [...document.querySelectorAll('#log .msg .text')].find(e => e.textContent.includes('Proud Wolf left.'));
		const bubble = forged.closest('.msg');
		const notice = [...document.querySelectorAll('#log .kind-notice')].pop();
		const cs = getComputedStyle(bubble), ns = getComputedStyle(notice);
		return {
			Kind: bubble.dataset.kind,
			Style: cs.fontStyle + (cs.fontStyle === ns.fontStyle ? ' (same as a notice)' : ''),
			Background: cs.backgroundColor === ns.backgroundColor ? 'same as a notice' : 'its own',
			Bubble: bubble.firstElementChild.className + ': ' + bubble.firstElementChild.textContent + ' | ' + forged.textContent,
			Quote: getComputedStyle(forged).borderLeftStyle,
			Notices: [...document.querySelectorAll('#log .kind-notice')].filter(n => n.textContent.includes('Proud Wolf')).length,
		};
	})()`)
	// The bubble opens with the sender's name; the forged line is part of the member's text.
	want := look{Kind: "relay", Style: "normal", Background: "its own", Bubble: "from: Calm Otter | " + forged, Quote: "solid", Notices: 0}
	if got != want {
		t.Errorf("forged notice rendered as %+v, want %+v", got, want)
	}
	v.screenshot(t.TempDir(), "forged-notice.png", "#log")
}

// A connection over the per-IP cap is refused, and the page says why.
func TestBrowserShowsConnectionRefusal(t *testing.T) {
	_, url, _ := startWeb(t, web.Config{Enabled: true, MaxConnectionsPerIP: 1})
	newVisitor(t, url, "first")
	second := openPage(t, url, "second")
	second.waitJS(`document.getElementById('status').textContent.includes('Too many open chats from your network (limit 1)')`,
		"the refusal's reason on the page")
	if p := second.problems(); len(p) != 0 {
		t.Errorf("browser problems: %v", p)
	}
}
