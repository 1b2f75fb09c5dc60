package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kumo-chat/kumo/rooms"
)

// The room controls: invite links (/invite), the creator's /kick, /lock and /unlock, and /extend,
// which any member may pay for.

// control answers one of the room-control commands.
func (b *Bridge) control(ctx context.Context, from Addr, name, args string) {
	switch name {
	case "invite":
		b.invite(from, args)
	case "kick":
		b.kick(from, args)
	case "lock", "unlock":
		b.lock(from, name == "lock")
	case "extend":
		b.extend(ctx, from)
	}
}

// invite makes a join token and shows it as a link for each platform kumo runs.
func (b *Bridge) invite(from Addr, args string) {
	var once bool
	switch strings.ToLower(strings.TrimSpace(args)) {
	case "":
	case "once":
		once = true
	case "revoke":
		n, err := b.store.RevokeTokens(from.Key())
		switch {
		case errors.Is(err, rooms.ErrNotInRoom):
			b.reply(from, "You are not in a room.")
		case errors.Is(err, rooms.ErrNotCreator):
			b.reply(from, "Only the room's creator can cancel its invite links.")
		case err != nil:
			b.reply(from, "The invite links could not be cancelled.")
		default:
			b.reply(from, fmt.Sprintf("Cancelled %s: they no longer let anyone in. The password still works.", plural(n, "invite link", "invite links")))
		}
		return
	default:
		b.reply(from, "Send /invite for an invite link, /invite once for one that works a single time, or /invite revoke to cancel them all.")
		return
	}
	token, room, err := b.store.NewToken(from.Key(), once)
	switch {
	case errors.Is(err, rooms.ErrNotInRoom):
		b.reply(from, "You are not in a room. Open one with /newroom first.")
		return
	case errors.Is(err, rooms.ErrTooManyTokens):
		b.reply(from, "This room has as many invite links as it can hold. The creator can cancel them with /invite revoke.")
		return
	case err != nil:
		b.reply(from, "No invite link could be made.")
		return
	}
	var s strings.Builder
	if once {
		s.WriteString("Invite links to your room. They work once, for whoever uses one first, until the room ends:")
	} else {
		s.WriteString("Invite links to your room. They work for anyone who has them until the room ends (the creator can cancel them with /invite revoke):")
	}
	names := make([]string, 0, len(b.platforms))
	for n := range b.platforms {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		inv, ok := b.platforms[n].(Inviter)
		if !ok {
			continue
		}
		if link, ok := inv.InviteLink(token); ok {
			s.WriteString("\n• " + n + ": " + link)
		}
	}
	s.WriteString("\nOr send me, on any messenger, /join followed by the token:")
	me := rooms.Member{}
	for _, m := range room.Members {
		if m.Key() == from.Key() {
			me = m
		}
	}
	b.replyRoom(from, Message{Text: s.String(), Code: token}, stateOf(room, me))
}

// kick removes a member for good, wiping their chat as /leave does.
func (b *Bridge) kick(from Addr, nick string) {
	if nick == "" {
		b.reply(from, "Send /kick followed by the pseudonym of the member to remove (/who lists them).")
		return
	}
	room, m, err := b.store.Kick(from.Key(), nick)
	switch {
	case errors.Is(err, rooms.ErrNotInRoom):
		b.reply(from, "You are not in a room.")
		return
	case errors.Is(err, rooms.ErrNotCreator):
		b.reply(from, "Only the room's creator can remove members.")
		return
	case errors.Is(err, rooms.ErrNoSuchMember):
		b.reply(from, "No member of this room has that pseudonym. /who lists them.")
		return
	case errors.Is(err, rooms.ErrKickSelf):
		b.reply(from, "You cannot remove yourself: /destroy ends the room for everyone.")
		return
	case err != nil:
		b.reply(from, "That member could not be removed.")
		return
	}
	const told = "🚫 The room's creator removed you from the room. Nothing more from it will reach you, and you cannot join it again."
	if b.cfg.Wipe {
		b.wipeChat(addrOf(m), rooms.Trace{Room: room.ID, Member: m.Key()}, told)
	} else {
		b.send(addrOf(m), Message{Kind: KindNotice, Text: told, Room: closedState}, nil, "")
	}
	b.noticeAll(room, "", fmt.Sprintf("%s was removed by the creator. %s.", m.Nick, members(len(room.Members))), false)
}

// lock closes the room to new members, or opens it again.
func (b *Bridge) lock(from Addr, locked bool) {
	room, changed, err := b.store.SetLocked(from.Key(), locked)
	switch {
	case errors.Is(err, rooms.ErrNotInRoom):
		b.reply(from, "You are not in a room.")
		return
	case errors.Is(err, rooms.ErrNotCreator):
		b.reply(from, "Only the room's creator can lock or unlock it.")
		return
	case err != nil:
		b.reply(from, "That did not work.")
		return
	case !changed && locked:
		b.reply(from, "The room is already locked. /unlock lets people join again.")
		return
	case !changed:
		b.reply(from, "The room is not locked.")
		return
	}
	if locked {
		b.noticeAll(room, "", "🔒 The creator locked the room: no one new can join, with the password or an invite.", false)
	} else {
		b.noticeAll(room, "", "🔓 The creator unlocked the room: people can join again.", false)
	}
}

// extension is an /extend being paid for.
type extension struct {
	Room  string
	Payer Addr
}

const extPrefix = "ext:"

// extend starts the payment of one more lifetime for the member's room; with free rooms it is
// applied at once.
func (b *Bridge) extend(ctx context.Context, from Addr) {
	room, err := b.store.CanExtend(from.Key())
	switch {
	case errors.Is(err, rooms.ErrNotInRoom):
		b.reply(from, "You are not in a room.")
		return
	case errors.Is(err, rooms.ErrMaxLifetime):
		b.reply(from, "This room cannot be extended: "+b.capText(room))
		return
	case err != nil:
		b.reply(from, "This room cannot be extended.")
		return
	}
	x := extension{Room: room.ID, Payer: from}
	if b.cfg.PriceSat == 0 {
		// Free rooms, free extensions: the cap alone bounds them.
		b.applyExtension(x, "")
		return
	}
	ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
	inv, err := b.pay.CreateInvoice(ictx, InvoiceRequest{AmountSat: b.cfg.PriceSat, Memo: "kumo room extension", Expiry: b.cfg.InvoiceExpiry})
	cancel()
	if err != nil {
		b.log.Error("invoice creation failed", "err", err)
		b.reply(from, "Payments are unavailable right now, so the room cannot be extended. Please try again in a few minutes.")
		return
	}
	b.stats.invoicesCreated.Add(1)
	ttl := time.Until(inv.ExpiresAt) + time.Minute
	b.purchaseMu.Lock()
	// One extension invoice per person at a time: a new /extend replaces the one before.
	old, hadOld := b.ephemeral.Get("extby:" + from.Key())
	b.ephemeral.Set(extPrefix+inv.ID, x, ttl)
	b.ephemeral.Set("extby:"+from.Key(), inv.ID, ttl)
	_, early := b.ephemeral.Get("early:" + inv.ID)
	if early {
		b.ephemeral.Delete(extPrefix + inv.ID)
	}
	b.purchaseMu.Unlock()
	if hadOld && old.(string) != inv.ID {
		if _, pending := b.takeExtension(old.(string)); pending {
			b.cancelInvoice(old.(string))
		}
	}
	if early {
		b.reply(from, "Sorry, the invoice expired before it could be shown. Please try again.")
		return
	}
	caption := fmt.Sprintf("⚡ Pay %s sat to keep this room open %s longer. This invoice expires in %s. Nothing is charged if the room cannot be extended (it ended, or reached its longest life).",
		groupDigits(inv.AmountSat), human(b.store.Config().Lifetime), human(inv.ExpiresAt.Sub(b.now())))
	if inv.Dev {
		caption += " (Development backend: no real money; this invoice can only be paid with the simulate-payment control.)"
	}
	b.sendTraced(b.traceOf(from), from, Message{Kind: KindInvoice, Text: caption, Code: inv.BOLT11, Invoice: &inv},
		&Image{Name: "invoice.png", PNG: inv.QR}, "")
}

// takeExtension removes and returns the extension an invoice pays for. Callers hold purchaseMu or
// accept that a concurrent payment event may take it first.
func (b *Bridge) takeExtension(id string) (extension, bool) {
	v, ok := b.ephemeral.Get(extPrefix + id)
	if !ok {
		return extension{}, false
	}
	b.ephemeral.Delete(extPrefix + id)
	return v.(extension), true
}

// extensionPayment acts on the payment of an extension: applied then settled, or cancelled.
func (b *Bridge) extensionPayment(ev PaymentEvent, x extension) {
	if v, ok := b.ephemeral.Get("extby:" + x.Payer.Key()); ok && v.(string) == ev.ID {
		b.ephemeral.Delete("extby:" + x.Payer.Key())
	}
	switch ev.State {
	case PaymentAccepted:
		b.stats.invoicesPaid.Add(1)
		if b.stopping.Load() {
			b.cancelInvoice(ev.ID)
			b.reply(x.Payer, "kumo is shutting down, so the room could not be extended. Your payment was cancelled and the funds return to your wallet.")
			return
		}
		b.applyExtension(x, ev.ID)
	case PaymentCanceled:
		b.stats.invoicesExpired.Add(1)
		b.reply(x.Payer, "Your extension invoice expired before it was paid; nothing was charged.")
	}
}

// applyExtension pushes the room's end, then takes the money (invoice, when not ""); if the room
// cannot be extended the payment is cancelled.
func (b *Bridge) applyExtension(x extension, invoice string) {
	if r, _, err := b.store.RoomOf(x.Payer.Key()); b.store.Live(x.Room) && (err != nil || r.ID != x.Room) {
		// The payer left (or was removed from) the room meanwhile: they are not charged for a room
		// they are no longer in.
		if invoice != "" {
			b.cancelInvoice(invoice)
		}
		b.reply(x.Payer, "The room was not extended: you are no longer in it. Any payment was cancelled and the funds return to your wallet.")
		return
	}
	room, err := b.store.Extend(x.Room)
	if err != nil {
		why := "the room has ended"
		if errors.Is(err, rooms.ErrMaxLifetime) {
			why = b.capText(room)
		}
		if invoice != "" {
			b.cancelInvoice(invoice)
			b.reply(x.Payer, fmt.Sprintf("The room could not be extended: %s Your payment was cancelled and the funds return to your wallet.", strings.TrimSuffix(why, ".")+"."))
		} else {
			b.reply(x.Payer, "The room could not be extended: "+strings.TrimSuffix(why, ".")+".")
		}
		return
	}
	if invoice != "" {
		b.settle(invoice)
	}
	who := "A member"
	for _, m := range room.Members {
		if m.Key() == x.Payer.Key() {
			who = m.Nick
		}
	}
	b.log.Info("room extended", "room", room.ID[:8], "paid", invoice != "")
	b.noticeAll(room, "", fmt.Sprintf("⏳ %s extended the room by %s: it now self-destructs in %s (at %s).",
		who, human(b.store.Config().Lifetime), human(room.ExpiresAt.Sub(b.now())), room.ExpiresAt.UTC().Format("15:04 MST, 2 Jan")), false)
}

// capText says that one more lifetime does not fit.
func (b *Bridge) capText(room rooms.Room) string {
	cfg := b.store.Config()
	return fmt.Sprintf("a room lives at most %s, and one more %s would take this one past that. It self-destructs at %s.",
		human(cfg.MaxLifetime), human(cfg.Lifetime), room.ExpiresAt.UTC().Format("15:04 MST, 2 Jan"))
}
