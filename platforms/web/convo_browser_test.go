package web_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kumo-chat/kumo/bridge"
	"github.com/kumo-chat/kumo/bridge/bridgetest"
)

// relayJS finds the relay on the page whose text is text.
func relayJS(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#log .kind-relay')].find(m => m.querySelector('.text').textContent === %s)`, js(text))
}

// ownJS finds the visitor's own line whose text is text.
func ownJS(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#log .kind-self')].find(m => m.querySelector('.text').textContent === %s)`, js(text))
}

// TestBrowserConversation: a web visitor replies, reacts, edits and takes back through the page's
// buttons, and sees a member on another platform ("cv", which edits, deletes and reacts) do the
// same to theirs; each arrives as the action on the other's own copy.
func TestBrowserConversation(t *testing.T) {
	cfg := bridge.DefaultConfig()
	cfg.PriceSat = 0
	cv := bridgetest.NewConversing("cv", bridge.Limits{MaxText: 4096}, 1, 3, nil)
	k := startKumo(t, cfg, cv)
	alice := newVisitor(t, k.url, "alice")
	alice.do(chromedp.Click(chromedp.ID("btn-newroom")))
	alice.waitKind("reply", "Your room is open")
	carol := cv.User("carol")
	cv.Say(t, carol, "/join "+alice.code("Your room is open"))
	cv.WaitText(t, carol.Chat, "You joined")
	waitCV := func(what string, cond func(ss []bridgetest.Shown) bool) []bridgetest.Shown {
		t.Helper()
		return cv.WaitChat(t, carol.Chat, 30*time.Second, what, cond)
	}
	findCV := func(ss []bridgetest.Shown, text string) int {
		return slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return !s.Own && s.Msg.Text == text })
	}

	cv.Say(t, carol, "hello web")
	var carolMsg bridge.MessageID
	for _, s := range cv.Chat(carol.Chat) {
		if s.Own && s.Text == "hello web" {
			carolMsg = s.ID
		}
	}
	alice.waitJS(relayJS("hello web")+` !== undefined`, "carol's message")

	// Reply with the page's ↩ button: carol gets a reply to her own message.
	evalJS[bool](alice, relayJS("hello web")+`.querySelector('.msg-actions .reply').click() || true`)
	alice.waitJS(`!document.getElementById('compose-state').hidden`, "the reply bar")
	alice.send("hi carol")
	ss := waitCV("alice's reply", func(ss []bridgetest.Shown) bool { return findCV(ss, "hi carol") >= 0 })
	if got := ss[findCV(ss, "hi carol")].Msg; got.ReplyTo != carolMsg {
		t.Fatalf("carol got alice's reply as a reply to %q, want her own message %q", got.ReplyTo, carolMsg)
	}
	alice.waitJS(ownJS("hi carol")+`.querySelector('.quote').textContent.startsWith('↩ ')`, "her line quoting what it answers")

	// React: carol's own message shows alice's 👍.
	evalJS[bool](alice, relayJS("hello web")+`.querySelector('.msg-actions .react[data-emoji="👍"]').click() || true`)
	waitCV("👍 on carol's message", func(ss []bridgetest.Shown) bool {
		i := slices.IndexFunc(ss, func(s bridgetest.Shown) bool { return s.ID == carolMsg })
		return i >= 0 && slices.Equal(ss[i].Reactions, []string{"👍"})
	})

	// carol edits hers and reacts to alice's: the page changes both in place.
	cv.Act(t, carol, bridge.ActionEdit, carolMsg, "hello web, edited")
	alice.waitJS(relayJS("hello web, edited")+`?.querySelector('.edited') != null`, "carol's edit in place")
	ss = cv.Chat(carol.Chat)
	cv.Act(t, carol, bridge.ActionReact, ss[findCV(ss, "hi carol")].ID, "🔥")
	alice.waitJS(ownJS("hi carol")+`.querySelector('.reactions').textContent === '🔥'`, "carol's 🔥 on alice's line")

	// alice edits her line with ✏️, then takes it back with 🗑.
	evalJS[bool](alice, ownJS("hi carol")+`.querySelector('.msg-actions .edit').click() || true`)
	alice.waitJS(`document.getElementById('text').value === 'hi carol'`, "her text back in the composer")
	alice.send("hi carol!")
	waitCV("alice's edit", func(ss []bridgetest.Shown) bool {
		i := findCV(ss, "hi carol!")
		return i >= 0 && ss[i].Edits == 1
	})
	evalJS[bool](alice, ownJS("hi carol!")+`.querySelector('.msg-actions .unsend').click() || true`)
	waitCV("alice's line taken back", func(ss []bridgetest.Shown) bool { return findCV(ss, "hi carol!") < 0 })

	// carol takes hers back: it leaves alice's page.
	cv.Act(t, carol, bridge.ActionUnsend, carolMsg, "")
	alice.waitJS(relayJS("hello web, edited")+` === undefined`, "carol's message removed")
	if p := alice.problems(); len(p) > 0 {
		t.Errorf("browser errors: %q", p)
	}
}
