package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/platforms/web"
	"github.com/kumo-chat/kumo/rooms"
)

// screen is one device the page must work on.
type screen struct {
	name          string
	width, height int64
	mobile        bool
}

var (
	phone   = screen{"phone", 390, 844, true}
	desktop = screen{"desktop", 1280, 800, false}
)

// emulate sets the viewport, the colour scheme ("light", "dark") and the time zone before the page
// loads.
func emulate(s screen, scheme, zone string) []chromedp.Action[chromedp.Void] {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
	if s.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	return []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(s.width, s.height, opts...),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
			if err != nil {
				return err
			}
			_, err = cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
			return err
		}),
	}
}

// contrastJS measures, from computed styles, the contrast of every visible piece of text against
// what is behind it (backgrounds blended up the tree, opacity applied), WCAG 2 formula. Disabled
// controls are exempt (WCAG 1.4.3). It returns the lowest ratio and the failures.
const contrastJS = `(() => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const blend = (top, under) => ({ r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1 });
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
    return bg;
  };
  const opacity = (el) => { let o = 1; for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity); return o; };
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  let min = 99; const fails = [];
  const check = (el, fg, what) => {
    const bg = behind(el);
    const c = parse(fg); if (!c) return;
    c.a *= opacity(el);
    const f = blend(c, bg);
    const [hi, lo] = [lum(f), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const cs = getComputedStyle(el);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    min = Math.min(min, ratio);
    if (ratio < need) fails.push(what.slice(0, 40) + ' ' + ratio.toFixed(2) + ':1 (' + fg + ' on rgb(' +
      [bg.r, bg.g, bg.b].map(Math.round).join(',') + '))');
  };
  for (const el of document.querySelectorAll('body *')) {
    if (!visible(el) || el.closest(':disabled') || el.closest('dialog:not([open])')) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
    if (own) check(el, getComputedStyle(el).color, el.textContent.trim());
    if ((el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') && el.placeholder && el.value === '') {
      check(el, getComputedStyle(el, '::placeholder').color, 'placeholder ' + el.placeholder);
    }
  }
  return { min, fails };
})()`

type contrast struct {
	Min   float64  `json:"min"`
	Fails []string `json:"fails"`
}

func (v *visitor) checkContrast(what string) float64 {
	v.t.Helper()
	c := evalJS[contrast](v, contrastJS)
	for _, f := range c.Fails {
		v.t.Errorf("%s, %s: contrast below WCAG AA: %s", v.name, what, f)
	}
	return c.Min
}

// inView says whether the element (CSS selector) is wholly on screen and not scrolled out of its
// scrolling container.
func (v *visitor) inView(sel string) bool {
	v.t.Helper()
	return evalJS[bool](v, fmt.Sprintf(`(() => {
		const e = document.querySelector(%s); if (!e) return false;
		const r = e.getBoundingClientRect(), l = document.getElementById('log').getBoundingClientRect();
		const inWindow = r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
		const inLog = !e.closest('#log') || (r.top >= l.top - 1 && r.bottom <= l.bottom + 1);
		return r.width > 0 && inWindow && inLog; })()`, js(sel)))
}

// layout is what the first-hour complaints were about, measured.
type layout struct {
	TaglineLines   int     `json:"taglineLines"`
	ActionRows     int     `json:"actionRows"`
	ActionsShare   float64 `json:"actionsShare"` // of the screen's height
	PlaceholderFit bool    `json:"placeholderFit"`
	ComposerInView bool    `json:"composerInView"`
}

const layoutJS = `(() => {
  const t = document.querySelector('.tagline'), cs = getComputedStyle(t);
  const lines = Math.round(t.getBoundingClientRect().height / parseFloat(cs.lineHeight));
  const tops = new Set([...document.querySelectorAll('.actions button, .actions input')]
    .filter((e) => e.getClientRects().length > 0).map((e) => Math.round(e.getBoundingClientRect().top / 8)));
  const a = document.querySelector('.actions').getBoundingClientRect();
  const ctx = document.createElement('canvas').getContext('2d');
  const fits = (e) => {
    const s = getComputedStyle(e);
    ctx.font = s.fontSize + ' ' + s.fontFamily;
    return ctx.measureText(e.placeholder).width <= e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
  };
  const c = document.getElementById('composer').getBoundingClientRect();
  return { taglineLines: lines, actionRows: tops.size, actionsShare: a.height / innerHeight,
    placeholderFit: [...document.querySelectorAll('input[placeholder], textarea[placeholder]')]
      .filter((e) => e.getClientRects().length > 0).every(fits),
    composerInView: c.top >= 0 && c.bottom <= innerHeight && c.height > 0 };
})()`

func (v *visitor) checkLayout(what string) layout {
	v.t.Helper()
	l := evalJS[layout](v, layoutJS)
	if l.TaglineLines > 2 {
		v.t.Errorf("%s, %s: the tagline takes %d lines", v.name, what, l.TaglineLines)
	}
	if l.ActionRows != 1 {
		v.t.Errorf("%s, %s: the controls take %d rows (%.0f%% of the screen)", v.name, what, l.ActionRows, 100*l.ActionsShare)
	}
	if !l.PlaceholderFit {
		v.t.Errorf("%s, %s: a placeholder is cut", v.name, what)
	}
	if !l.ComposerInView {
		v.t.Errorf("%s, %s: the composer is not on screen", v.name, what)
	}
	return l
}

// controls lists which of the page's buttons can be used now.
func (v *visitor) controls() string {
	v.t.Helper()
	return evalJS[string](v, `['btn-newroom', 'btn-join', 'btn-who', 'btn-info', 'btn-nick-open', 'btn-leave', 'btn-destroy', 'btn-help']
		.filter((id) => { const b = document.getElementById(id); return !b.disabled && b.getClientRects().length > 0; })
		.map((id) => id.slice(4)).join(' ')`)
}

// TestBrowserFirstHour: a visitor's first hour on a phone and a desktop, in light and dark: the
// landing page, an invoice whose QR code is on screen at once, a room, all with AA contrast.
func TestBrowserFirstHour(t *testing.T) {
	k := startKumo(t, bridge.DefaultConfig())
	for _, s := range []screen{phone, desktop} {
		for _, scheme := range []string{"light", "dark"} {
			t.Run(s.name+"-"+scheme, func(t *testing.T) {
				shots := t.TempDir()
				shot := func(v *visitor, step string) {
					v.screenshot(shots, fmt.Sprintf("firsthour-%s-%s-%s.png", s.name, scheme, step), "")
				}
				// Kiritimati is UTC+14: a time shown in UTC could never pass for local.
				v := newVisitor(t, k.url, "visitor", emulate(s, scheme, "Pacific/Kiritimati")...)
				if got := evalJS[bool](v, `matchMedia('(prefers-color-scheme: dark)').matches`); got != (scheme == "dark") {
					t.Fatalf("dark scheme %v, want %s", got, scheme)
				}
				// The landing page says what kumo is and how it works; only what applies is offered.
				if !v.inView("#intro") || !strings.Contains(evalJS[string](v, `document.getElementById('intro').textContent`), "New room") {
					t.Error("no introduction on the landing page")
				}
				if got := v.controls(); got != "newroom join help" {
					t.Errorf("out of a room the page offers %q", got)
				}
				v.checkLayout("landing")
				minLanding := v.checkContrast("landing")
				shot(v, "landing")

				// The invoice: its QR code is on screen the moment it arrives.
				v.do(chromedp.Click(chromedp.ID("btn-newroom")))
				v.waitJS(`(() => { const q = document.querySelector('.kind-invoice img.qr'); return q && q.complete && q.naturalWidth > 100; })()`, "the QR code")
				if !v.inView(".kind-invoice img.qr") {
					t.Error("the invoice's QR code is not on screen when it arrives")
				}
				dev := evalJS[int](v, `(document.querySelector('.kind-invoice').textContent.match(/development backend/gi) || []).length`)
				if dev != 1 {
					t.Errorf("the invoice says \"development backend\" %d times, want once", dev)
				}
				if err := evalJS[string](v, `(() => { for (const sel of ['#time-left', '.kind-invoice .countdown']) {
						const e = document.querySelector(sel), live = e.closest('[aria-live]');
						if (live && live.getAttribute('aria-live') !== 'off') return sel + ' is inside a live region';
					} return ''; })()`); err != "" {
					t.Error(err)
				}
				v.checkLayout("invoice")
				minInvoice := v.checkContrast("invoice")
				shot(v, "invoice")

				// In the room: the room's controls, Destroy for its creator, local times.
				v.do(chromedp.Click(chromedp.CSS(".kind-invoice .simulate-pay")))
				v.waitKind("reply", "Your creator key")
				v.waitJS(`document.body.dataset.room === 'in'`, "the room")
				if got := v.controls(); got != "who info nick-open leave destroy help" {
					t.Errorf("in a room its creator is offered %q", got)
				}
				local := evalJS[map[string]string](v, `(() => { const at = [...document.querySelectorAll('#log .msg .at')].pop();
					const opts = { hour: '2-digit', minute: '2-digit' };
					return { shown: at.textContent,
						kiritimati: new Date(at.dateTime).toLocaleTimeString(undefined, { ...opts, timeZone: 'Pacific/Kiritimati' }),
						utc: new Date(at.dateTime).toLocaleTimeString(undefined, { ...opts, timeZone: 'UTC' }) }; })()`)
				if local["shown"] != local["kiritimati"] || local["shown"] == local["utc"] {
					t.Errorf("a message's time is %q; local (UTC+14) is %q, UTC %q", local["shown"], local["kiritimati"], local["utc"])
				}
				ends := evalJS[map[string]string](v, `(() => { const e = document.getElementById('ends-at');
					return { shown: e.textContent, local: '(' + new Date(e.dataset.at).toLocaleTimeString(undefined,
						{ hour: '2-digit', minute: '2-digit', timeZone: 'Pacific/Kiritimati' }) + ')' }; })()`)
				if ends["shown"] != ends["local"] {
					t.Errorf("the room's end shows as %q, want local %q", ends["shown"], ends["local"])
				}
				v.checkLayout("room")
				minRoom := v.checkContrast("room")
				shot(v, "room")
				t.Logf("lowest contrast: landing %.2f:1, invoice %.2f:1, room %.2f:1", minLanding, minInvoice, minRoom)
				if p := v.problems(); len(p) > 0 {
					t.Errorf("browser errors: %q", p)
				}
			})
		}
	}
}

// TestBrowserCreatorReclaim: the creator reloads (the browser asks first), pastes their creator key
// and is the room's creator again, with the same pseudonym; the other member sees nothing change.
// Leaving asks first too, and "Stay" stays.
func TestBrowserCreatorReclaim(t *testing.T) {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	k := startKumo(t, cfg)
	shots := t.TempDir()
	alice := newVisitor(t, k.url, "alice", emulate(phone, "light", "Europe/Paris")...)
	bob := newVisitor(t, k.url, "bob")
	alice.do(chromedp.Click(chromedp.ID("btn-newroom")))
	alice.waitKind("reply", "Your creator key")
	password, key := alice.code("Your room is open"), alice.code("Your creator key")
	if !rooms.LooksLikeCreatorKey(key) {
		t.Fatalf("creator key %q", key)
	}
	alice.waitJS(`document.body.dataset.creator === 'yes'`, "alice as creator")
	bob.do(chromedp.SetValue(chromedp.ID("join-password"), password), chromedp.Click(chromedp.ID("btn-join")))
	bob.waitKind("reply", "You joined the room")
	bob.waitJS(`document.body.dataset.room === 'in'`, "bob in the room")
	if got := bob.controls(); got != "who info nick-open leave help" {
		t.Errorf("a member is offered %q", got)
	}
	alice.waitKind("notice", "joined")
	nick := evalJS[string](alice, `document.getElementById('room-state').textContent`)

	// Leave asks; Stay stays.
	bob.do(chromedp.Click(chromedp.ID("btn-leave")))
	bob.waitJS(`document.getElementById('confirm').open`, "the leave confirmation")
	bob.screenshot(shots, "reclaim-leave-confirm.png", "")
	bob.confirm(false)
	if got := evalJS[string](bob, `document.body.dataset.room`); got != "in" {
		t.Errorf("after Stay bob is %q", got)
	}

	// The reload: the browser asks before the page (and the room with it) goes.
	alice.do(chromedp.Reload())
	alice.waitJS(`document.getElementById('status').dataset.state === 'connected' && document.body.dataset.room === 'out'`, "a fresh page")
	if d := alice.browserDialogs(); len(d) != 1 || d[0] != page.DialogTypeBeforeunload {
		t.Errorf("dialogs before the reload: %v, want one beforeunload", d)
	}
	alice.do(chromedp.SetValue(chromedp.ID("join-password"), key), chromedp.Click(chromedp.ID("btn-join")))
	alice.waitKind("reply", "You are the room's creator again")
	alice.waitJS(`document.body.dataset.creator === 'yes' && document.body.dataset.room === 'in'`, "alice as creator again")
	if got := evalJS[string](alice, `document.getElementById('room-state').textContent`); got != nick {
		t.Errorf("after reclaiming alice's room bar says %q, before %q", got, nick)
	}
	alice.screenshot(shots, "reclaim-phone.png", "")
	alice.send("back after a reload")
	bob.waitJS(`[...document.querySelectorAll('#log .kind-relay .text')].some(e => e.textContent === 'back after a reload')`, "alice's words")
	if n := evalJS[int](bob, `[...document.querySelectorAll('#log .kind-notice .text')].filter(e => /left|joined/.test(e.textContent)).length`); n != 0 {
		t.Errorf("bob was told of %d arrivals or departures", n)
	}

	// The creator destroys the room with the Destroy button, after confirming.
	alice.do(chromedp.Click(chromedp.ID("btn-destroy")))
	alice.confirm(true)
	bob.waitKind("notice", "The creator destroyed this room")
	alice.waitJS(`document.body.dataset.room === 'out'`, "alice out")
	for _, secret := range []string{key, password} {
		if strings.Contains(k.logs.String(), secret) {
			t.Error("the log holds the creator key or the password")
		}
	}
	for _, v := range []*visitor{alice, bob} {
		if p := v.problems(); len(p) > 0 {
			t.Errorf("%s: browser errors: %q", v.name, p)
		}
	}
}

// TestBrowserGhostLeaves: a visitor whose page is gone leaves the room when the resume grace ends;
// the others are told and the room has room again.
func TestBrowserGhostLeaves(t *testing.T) {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	cfg.Rooms.MaxMembers = 2
	const grace = 2 * time.Second
	k := startKumoWith(t, cfg, []web.Option{web.WithResumeGrace(grace)})
	shots := t.TempDir()
	alice, bob, password := twoInARoom(t, k)
	bobNick := strings.TrimSuffix(alice.waitKind("notice", "joined"), " joined. 2 members.")

	// Bob's tab closes: no page, no goodbye.
	closed := time.Now()
	bob.cancel()
	left := alice.waitKind("notice", bobNick+" left")
	if left != bobNick+" left. 1 member." {
		t.Errorf("alice was told %q", left)
	}
	if waited := time.Since(closed); waited < grace {
		t.Errorf("bob left %s after his page closed, before the %s grace ended", waited, grace)
	}
	alice.waitJS(`/· 1 member\b/.test(document.getElementById('room-state').textContent)`, "one member in the room bar")
	alice.do(chromedp.Click(chromedp.ID("btn-who")))
	if who := alice.waitKind("reply", "in this room"); strings.Contains(who, bobNick) || !strings.HasPrefix(who, "1 member") {
		t.Errorf("/who says %q", who)
	}
	// His seat is free: someone else fits in the room of two.
	carol := newVisitor(t, k.url, "carol")
	carol.do(chromedp.SetValue(chromedp.ID("join-password"), password), chromedp.Click(chromedp.ID("btn-join")))
	carol.waitKind("reply", "You joined the room")
	alice.screenshot(shots, "ghost-left.png", "")
	if p := alice.problems(); len(p) > 0 {
		t.Errorf("browser errors: %q", p)
	}
}
