package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kumo-chat/kumo/rooms"
)

// command answers one command.
func (b *Bridge) command(ctx context.Context, in Inbound, name, args string) {
	from := in.From
	switch name {
	case "start", "help":
		if name == "start" && args != "" {
			// A deep link (Telegram's t.me/<bot>?start=<token>) carries an invite token.
			b.join(in, args, false)
			return
		}
		b.reply(from, helpText(b.cfg.PriceSat, b.store.Config().Lifetime))
	case "newroom":
		b.newRoom(ctx, in, args)
	case "join":
		if args == "" {
			b.reply(from, "Send /join followed by the room's password.")
			return
		}
		b.join(in, args, false)
	case "leave":
		room, m, err := b.store.Leave(from.Key())
		if err != nil {
			b.reply(from, "You are not in a room.")
			return
		}
		if b.cfg.Wipe {
			b.wipeChat(from, rooms.Trace{Room: room.ID, Member: m.Key()}, "👋 You left the room. Nothing more from it will reach you.")
		} else {
			b.replyRoom(from, Message{Text: "You left the room. Nothing more from it will reach you."}, closedState)
		}
		b.noticeAll(room, "", fmt.Sprintf("%s left. %s.", m.Nick, members(len(room.Members))), false)
	case "who":
		room, me, err := b.store.RoomOf(from.Key())
		if err != nil {
			b.reply(from, "You are not in a room.")
			return
		}
		var s strings.Builder
		fmt.Fprintf(&s, "%s in this room:", members(len(room.Members)))
		for _, m := range room.Members {
			s.WriteString("\n• " + m.Nick)
			if m.Key() == me.Key() {
				s.WriteString(" (you)")
			}
		}
		b.reply(from, s.String())
	case "info":
		room, me, err := b.store.RoomOf(from.Key())
		if err != nil {
			b.reply(from, "You are not in a room.")
			return
		}
		locked := ""
		if b.store.Locked(from.Key()) {
			locked = " It is locked: no one new can join."
		}
		b.replyRoom(from, Message{Text: fmt.Sprintf("You are %s. %s. This room self-destructs in %s (at %s).%s",
			me.Nick, members(len(room.Members)), human(room.ExpiresAt.Sub(b.now())), room.ExpiresAt.UTC().Format("15:04 MST, 2 Jan"), locked)},
			stateOf(room, me))
	case "nick":
		if args == "" {
			b.reply(from, "Send /nick followed by the name you want.")
			return
		}
		room, old, m, err := b.store.Rename(from.Key(), args)
		switch {
		case errors.Is(err, rooms.ErrNotInRoom):
			b.reply(from, "You are not in a room.")
		case errors.Is(err, rooms.ErrNickTaken):
			b.reply(from, "Someone in this room already has that name.")
		case errors.Is(err, rooms.ErrNickInvalid):
			b.reply(from, "That name cannot be used ("+strings.TrimPrefix(err.Error(), rooms.ErrNickInvalid.Error()+": ")+").")
		case err != nil:
			b.reply(from, "That name cannot be used.")
		default:
			b.replyRoom(from, Message{Text: "You are now " + m.Nick + "."}, stateOf(room, m))
			b.noticeAll(room, m.Key(), fmt.Sprintf("%s is now %s.", old.Nick, m.Nick), false)
		}
	case "invite", "kick", "lock", "unlock", "extend":
		b.control(ctx, from, name, args)
	case "reclaim":
		if args == "" {
			b.reply(from, "Send /reclaim followed by the creator key you got when your room opened.")
			return
		}
		b.reclaim(in, args)
	case "destroy":
		_, err := b.store.Destroy(from.Key())
		switch {
		case errors.Is(err, rooms.ErrNotInRoom):
			b.reply(from, "You are not in a room.")
		case errors.Is(err, rooms.ErrNotCreator):
			b.reply(from, "Only the room's creator can destroy it. You can /leave.")
		}
		// On success every member, the creator included, gets the "destroyed" notice.
	default:
		b.reply(from, "I don't know /"+name+".\n\n"+helpText(b.cfg.PriceSat, b.store.Config().Lifetime))
	}
}

// join lets someone into the room with that password.
// bare says the password came as a plain message (from someone in no room) rather than with /join.
func (b *Bridge) join(in Inbound, password string, bare bool) {
	from := in.From
	if rooms.LooksLikeCreatorKey(password) {
		b.reclaim(in, password)
		return
	}
	room, m, err := b.store.Join(password, memberOf(from), in.Origin)
	var th *rooms.ThrottledError
	switch {
	case errors.As(err, &th):
		b.reply(from, b.throttledText(th))
	case errors.Is(err, rooms.ErrAlreadyInRoom):
		b.reply(from, "You are already in a room. /leave it first.")
	case errors.Is(err, rooms.ErrWrongPassword):
		left := b.store.FailuresLeft(from.Key())
		msg := "No live room has that password or invite."
		if bare {
			msg = "You are not in a room, and no live room has that password or invite."
		}
		if left == 0 {
			msg += " That was too many wrong passwords: wait a while before trying again."
		} else if left <= 2 {
			msg += fmt.Sprintf(" %d more wrong password(s) and you will have to wait.", left)
		}
		b.reply(from, msg+" Send /newroom to open a room of your own.")
	case errors.Is(err, rooms.ErrRoomFull):
		b.reply(from, "That room is full.")
	case errors.Is(err, rooms.ErrLocked):
		b.reply(from, "That room is locked: its creator is letting no one new in right now.")
	case errors.Is(err, rooms.ErrKicked):
		b.reply(from, "You were removed from that room by its creator and cannot join it again.")
	case err != nil:
		b.reply(from, "Could not join that room.")
	default:
		b.replyRoom(from, Message{Text: fmt.Sprintf("You joined the room as %s. %s; it self-destructs in %s. Everything you send now goes to the room. /help lists the commands.%s",
			m.Nick, members(len(room.Members)), human(room.ExpiresAt.Sub(b.now())), b.ownStayNote(from))}, stateOf(room, m))
		b.noticeAll(room, m.Key(), fmt.Sprintf("%s joined. %s.", m.Nick, members(len(room.Members))), false)
	}
}

// throttledText answers an attempt that a guess limit stopped before its password was looked at,
// and counts it (kumo_join_attempts_throttled_total).
func (b *Bridge) throttledText(th *rooms.ThrottledError) string {
	b.stats.throttled.Add(1)
	wait := human(th.RetryIn)
	switch th.Scope {
	case rooms.ScopeOrigin:
		return "⏳ Busy: too many wrong passwords came from your network lately, so no password from it is checked for now. Try again in " + wait + "."
	case rooms.ScopeGlobal:
		return "⏳ Busy: too many wrong passwords were sent lately, so no password is checked for now. Try again in " + wait + ". Members already in rooms are not affected."
	}
	return "Too many wrong passwords. Try again in " + wait + "."
}

// newRoom starts a purchase, or opens a free room at once.
func (b *Bridge) newRoom(ctx context.Context, in Inbound, password string) {
	from := in.From
	if _, _, err := b.store.RoomOf(from.Key()); err == nil {
		b.reply(from, "You are already in a room. /leave it first.")
		return
	}
	generated := password == ""
	if generated {
		password = rooms.GeneratePassword()
		for !b.store.PasswordFree(password) {
			password = rooms.GeneratePassword()
		}
	} else {
		if rooms.LooksLikeCreatorKey(password) {
			// Sent as a password it would reclaim instead of join: nobody could join with it.
			b.reply(from, "That looks like a creator key, not a password. Choose another password, or send /newroom alone and I will make one.")
			return
		}
		// Strength first, without looking the password up: only passwords no budget of guesses can
		// find ever reach the "in use" answer below.
		if err := b.store.CheckStrength(password); err != nil {
			why := fmt.Sprintf("A password needs at least %d characters.", rooms.MinPasswordLen)
			if errors.Is(err, rooms.ErrPasswordGuessable) {
				why = "That password is too easy to guess: " + strings.TrimPrefix(err.Error(), rooms.ErrPasswordGuessable.Error()+": ") +
					". A room's password is its only lock."
			}
			b.reply(from, why+" Send /newroom alone and I will make a strong one, like the one below.")
			b.send(from, Message{Kind: KindReply, Text: "A strong password (send /newroom followed by it, or /newroom alone for a fresh one):", Code: rooms.GeneratePassword()}, nil, "")
			return
		}
		// The answer tells whether a live room uses the password, so it is a guess: counted like a
		// wrong password, and not given at all past a limit.
		err := b.store.CheckChosen(password, from.Key(), in.Origin)
		var th *rooms.ThrottledError
		switch {
		case errors.As(err, &th):
			b.reply(from, b.throttledText(th))
			return
		case errors.Is(err, rooms.ErrPasswordTaken):
			b.reply(from, "That password is already in use. Choose another one (this counted as a wrong password), or send /newroom alone for a strong one.")
			return
		}
	}
	if b.cfg.PriceSat > 0 {
		if err := b.store.CanPurchase(from.Key(), in.Origin); err != nil {
			b.reply(from, pendingText(err))
			return
		}
	}
	p := rooms.Purchase{Creator: memberOf(from), Password: password, Generated: generated, Origin: in.Origin}
	if b.cfg.PriceSat == 0 {
		b.open(p)
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
	inv, err := b.pay.CreateInvoice(ictx, InvoiceRequest{AmountSat: b.cfg.PriceSat, Memo: "kumo room", Expiry: b.cfg.InvoiceExpiry})
	cancel()
	if err != nil {
		b.log.Error("invoice creation failed", "err", err)
		if errors.Is(err, ErrPaymentsUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			b.reply(from, "Payments are unavailable right now, so no room can be opened. Please try again in a few minutes.")
		} else {
			b.reply(from, "Sorry, the invoice could not be created. Please try again.")
		}
		return
	}
	b.stats.invoicesCreated.Add(1)
	p.InvoiceID = inv.ID
	p.ExpiresAt = inv.ExpiresAt
	b.purchaseMu.Lock()
	old, replaced, err := b.store.AddPurchase(p)
	if err != nil {
		// Others filled the cap while this invoice was being made.
		b.purchaseMu.Unlock()
		b.cancelInvoice(inv.ID)
		b.reply(from, pendingText(err))
		return
	}
	_, early := b.ephemeral.Get("early:" + inv.ID)
	if early {
		b.store.TakePurchase(inv.ID)
	}
	b.purchaseMu.Unlock()
	if replaced {
		b.cancelInvoice(old.InvoiceID)
	}
	if early {
		// The backend reported the invoice gone before it was even recorded (an absurdly short
		// expiry, or a backend that cancelled it at once): nothing can pay it.
		b.reply(from, "Sorry, the invoice expired before it could be shown. Please try again.")
		return
	}
	t := rooms.Trace{}
	if b.cfg.Wipe {
		// The invoice exists before the room: it is recorded with the purchase and moves into the
		// room when it opens, or is wiped when the invoice expires.
		t = rooms.Pending(from.Key())
	}
	b.sendTraced(t, from, Message{Kind: KindInvoice, Text: invoiceCaption(inv, b.now()), Code: inv.BOLT11, Invoice: &inv},
		&Image{Name: "invoice.png", PNG: inv.QR}, "")
}

// pendingText answers a purchase refused by a cap on unpaid invoices.
func pendingText(err error) string {
	if errors.Is(err, rooms.ErrTooManyPendingOrigin) {
		return "⏳ Busy: too many unpaid invoices are waiting from your network. Pay or let one expire (or try again in a few minutes); no invoice was made."
	}
	return "⏳ Busy: too many unpaid invoices are waiting right now. Please try again in a few minutes; no invoice was made."
}

func invoiceCaption(inv Invoice, now time.Time) string {
	s := fmt.Sprintf("⚡ Pay %s sat to open your room. This invoice expires in %s; the room opens as soon as it is paid.",
		groupDigits(inv.AmountSat), human(inv.ExpiresAt.Sub(now)))
	if inv.Dev {
		s += " (Development backend: no real money; this invoice can only be paid with the simulate-payment control.)"
	}
	return s
}

// onPayment is the backend's notify: it must not block, and must not call the backend back in its
// goroutine, so events are queued for paymentLoop.
func (b *Bridge) onPayment(ev PaymentEvent) {
	select {
	case b.payEvents <- ev:
	default:
		// Only reachable if hundreds of payments arrive within one room-opening; the backend's
		// reconciliation reports it again.
		b.log.Error("payment event queue full, dropping one report", "invoice", short(ev.ID), "state", ev.State.String())
	}
}

func (b *Bridge) paymentLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-b.payEvents:
			b.payment(ev)
		}
	}
}

// payment acts on each invoice once, whatever the backend replays.
func (b *Bridge) payment(ev PaymentEvent) {
	b.purchaseMu.Lock()
	p, ok := b.store.TakePurchase(ev.ID)
	var x extension
	var isExt bool
	if !ok {
		x, isExt = b.takeExtension(ev.ID)
	}
	if isExt {
		b.purchaseMu.Unlock()
		b.ephemeral.Set("paid:"+ev.ID, true, 24*time.Hour)
		b.extensionPayment(ev, x)
		return
	}
	if !ok && ev.State == PaymentCanceled {
		// Maybe newRoom has not recorded this purchase yet: let it know the invoice is gone.
		b.ephemeral.Set("early:"+ev.ID, true, time.Hour)
	}
	b.purchaseMu.Unlock()
	if !ok {
		if _, done := b.ephemeral.Get("paid:" + ev.ID); done || ev.State != PaymentAccepted {
			return
		}
		// Money is held for a purchase kumo does not know (from before a restart, or long expired):
		// nobody is waiting for a room from it, so give it back.
		b.log.Warn("payment for an unknown invoice, cancelling it", "invoice", short(ev.ID))
		b.cancelInvoice(ev.ID)
		return
	}
	b.ephemeral.Set("paid:"+ev.ID, true, 24*time.Hour)
	switch ev.State {
	case PaymentAccepted:
		b.stats.invoicesPaid.Add(1)
		b.open(p)
	case PaymentCanceled:
		b.stats.invoicesExpired.Add(1)
		b.wipePending(addrOf(p.Creator))
		b.reply(addrOf(p.Creator), "Your invoice expired before it was paid, so no room was opened and nothing was charged. Send /newroom to try again.")
	}
}

// open creates the room a purchase paid for, then takes the money; if the room cannot be created the
// payment is cancelled, so the payer gets it back.
func (b *Bridge) open(p rooms.Purchase) {
	from := addrOf(p.Creator)
	if b.stopping.Load() {
		// A room opened now would vanish with this process: never take money for it.
		if p.InvoiceID != "" {
			b.cancelInvoice(p.InvoiceID)
		}
		b.wipePending(from)
		b.reply(from, "kumo is shutting down, so your room could not be opened. Any payment was cancelled and the funds return to your wallet.")
		return
	}
	room, me, err := b.store.Open(p.Creator, p.Password)
	if err != nil {
		var why string
		switch {
		case errors.Is(err, rooms.ErrPasswordTaken):
			why = "another room took that password meanwhile"
		case errors.Is(err, rooms.ErrAlreadyInRoom):
			why = "you joined another room meanwhile"
		default:
			why = "something went wrong"
		}
		b.wipePending(from)
		if p.InvoiceID != "" {
			b.cancelInvoice(p.InvoiceID)
			b.reply(from, fmt.Sprintf("Your room could not be opened: %s. Your payment was cancelled and the funds return to your wallet. Send /newroom to try again.", why))
		} else {
			b.reply(from, fmt.Sprintf("Your room could not be opened: %s. Send /newroom to try again.", why))
		}
		return
	}
	if p.InvoiceID != "" {
		b.settle(p.InvoiceID)
	}
	b.log.Info("room opened", "room", room.ID[:8], "paid", p.InvoiceID != "")
	text := fmt.Sprintf("✅ Your room is open for %s (until %s). You are %s.\nAnyone who sends me this password joins, on any messenger.%s\nIts password:",
		human(room.ExpiresAt.Sub(b.now())), room.ExpiresAt.UTC().Format("15:04 MST, 2 Jan"), me.Nick, b.ownStayNote(from))
	b.replyRoom(from, Message{Text: text, Code: p.Password}, stateOf(room, me))
	key, err := b.store.NewCreatorKey(me.Key())
	if err != nil {
		return // the room ended (or its creator left) in the meantime: no key to give
	}
	b.replyRoom(from, Message{Text: creatorKeyText, Code: key}, stateOf(room, me))
}

// creatorKeyText comes with the creator key, the one time it is shown.
const creatorKeyText = "🔑 Your creator key, shown only this once: keep it to yourself. If you lose this chat " +
	"(reloading the web page does), send /reclaim followed by this key, from anywhere, to be the room's creator again. " +
	"kumo cannot show it again."

// reclaim makes the sender the creator of the room the creator key opens (rooms.Store.Reclaim).
func (b *Bridge) reclaim(in Inbound, key string) {
	from := in.From
	got, err := b.store.Reclaim(key, memberOf(from), in.Origin)
	var th *rooms.ThrottledError
	switch {
	case errors.As(err, &th) && th.Scope == rooms.ScopePerson:
		b.stats.throttled.Add(1)
		b.reply(from, fmt.Sprintf("Too many wrong passwords or keys. Try again in %s.", human(th.RetryIn)))
		return
	case errors.As(err, &th):
		b.reply(from, b.throttledText(th))
		return
	case errors.Is(err, rooms.ErrWrongCreatorKey):
		msg := "No live room has that creator key."
		if b.store.FailuresLeft(from.Key()) == 0 {
			msg += " That was too many wrong tries: wait a while before trying again."
		}
		b.reply(from, msg)
		return
	case errors.Is(err, rooms.ErrAlreadyInRoom):
		b.reply(from, "You are in another room. /leave it first.")
		return
	case errors.Is(err, rooms.ErrRoomFull):
		b.reply(from, "That room is full, so you cannot get back in now.")
		return
	case err != nil:
		b.reply(from, "Could not reclaim that room.")
		return
	}
	room, me := got.Room, got.Me
	if got.Already {
		b.replyRoom(from, Message{Text: "You are already this room's creator."}, stateOf(room, me))
		return
	}
	b.replyRoom(from, Message{Text: fmt.Sprintf("🔑 You are the room's creator again, as %s. %s; it self-destructs in %s. Your creator key stays the same.",
		me.Nick, members(len(room.Members)), human(room.ExpiresAt.Sub(b.now())))}, stateOf(room, me))
	if got.Moved && got.Replaced.Key() != from.Key() {
		const text = "Your room's creator key was used in another chat: the room goes on there. Nothing more from it will reach you here."
		if b.cfg.Wipe {
			// The old chat is out of the room: like a member who left, it keeps nothing of it.
			b.wipeChat(addrOf(got.Replaced), rooms.Trace{Room: room.ID, Member: got.Replaced.Key()}, "🔑 "+text)
		} else {
			b.replyRoom(addrOf(got.Replaced), Message{Text: text}, closedState)
		}
	}
	switch {
	case got.Joined:
		b.noticeAll(room, me.Key(), fmt.Sprintf("%s joined. %s.", me.Nick, members(len(room.Members))), false)
	case got.Moved && got.Replaced.Nick != me.Nick:
		// A member took the creator's rights: the creator's old seat left the room.
		b.noticeAll(room, me.Key(), fmt.Sprintf("%s left. %s.", got.Replaced.Nick, members(len(room.Members))), false)
	}
}

// settle takes the payment; it is retried because the room already exists and the payer must not be
// left with a held payment that times out into a free room.
func (b *Bridge) settle(id string) {
	if err := b.retryPayment(id, b.pay.Settle); err != nil {
		b.log.Error("settling a paid invoice failed; the room is open anyway", "invoice", short(id), "err", err)
	}
}

// cancelInvoice gives the payer their money back; it is retried for the same reason.
func (b *Bridge) cancelInvoice(id string) {
	if err := b.retryPayment(id, b.pay.Cancel); err != nil {
		b.log.Error("cancelling an invoice failed", "invoice", short(id), "err", err)
	}
}

// retryPayment calls op (Settle or Cancel) up to five times, 15 s each, waiting 1 s, 2 s, ... between
// tries; it gives up early when the bridge's send context ends. It returns the last error.
func (b *Bridge) retryPayment(id string, op func(context.Context, string) error) error {
	var err error
	for attempt := range 5 {
		ctx, cancel := context.WithTimeout(b.sendCtx, 15*time.Second)
		err = op(ctx, id)
		cancel()
		if err == nil || !b.sleep(time.Duration(attempt+1)*time.Second) {
			return err
		}
	}
	return err
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
