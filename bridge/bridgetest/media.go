package bridgetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kumo-chat/kumo/bridge"
)

// MediaPlatform is a Platform that shows media (bridge.MediaSender), up to a size.
type MediaPlatform struct {
	*Platform
	maxUpload int64

	mmu   sync.Mutex
	media map[string][]Received
	gate  chan struct{} // when set, every upload first takes a value from it
}

var _ bridge.MediaSender = (*MediaPlatform)(nil)

// NewMedia makes a fake platform that takes files up to maxUpload bytes.
func NewMedia(name string, limits bridge.Limits, maxUpload int64) *MediaPlatform {
	return &MediaPlatform{Platform: New(name, limits), maxUpload: maxUpload, media: map[string][]Received{}}
}

// MaxUpload implements bridge.MediaSender.
func (p *MediaPlatform) MaxUpload(bridge.MediaKind) int64 { return p.maxUpload }

// SendMedia implements bridge.MediaSender: the media is recorded with its message, which joins the
// chat's messages like any other.
func (p *MediaPlatform) SendMedia(ctx context.Context, to bridge.Addr, md bridge.Media, m bridge.Message) ([]bridge.MessageID, error) {
	p.mmu.Lock()
	gate := p.gate
	p.mmu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if int64(len(md.Data)) > p.maxUpload {
		return nil, fmt.Errorf("%s: %w: %w", p.name, bridge.ErrRejected, bridge.ErrTooBig)
	}
	r := Received{Media: md, Sum: sha256.Sum256(md.Data), Len: len(md.Data)}
	r.Media.Data = nil // the bridge frees its bytes once every upload is done; tests compare sums
	p.mmu.Lock()
	p.media[to.Chat] = append(p.media[to.Chat], r)
	p.mmu.Unlock()
	id, err := p.record(to, m, nil)
	if err != nil {
		return nil, err
	}
	return []bridge.MessageID{id}, nil
}

// HoldUploads makes every upload wait until release is called once per upload it lets through.
func (p *MediaPlatform) HoldUploads() (release func()) {
	gate := make(chan struct{})
	p.mmu.Lock()
	p.gate = gate
	p.mmu.Unlock()
	return func() { gate <- struct{}{} }
}

// Received is one file a chat was sent: its kind, type and name, and its bytes' length and SHA-256.
type Received struct {
	bridge.Media
	Sum [32]byte
	Len int
}

// Media is every file the chat was sent so far.
func (p *MediaPlatform) Media(chat string) []Received {
	p.mmu.Lock()
	defer p.mmu.Unlock()
	return slices.Clone(p.media[chat])
}

// SayMedia hands the core a message with attachments from the user; text is their caption.
func (p *Platform) SayMedia(t testing.TB, from bridge.Addr, text string, atts ...bridge.Attachment) {
	t.Helper()
	p.handler(t).HandleInbound(context.Background(), bridge.Inbound{From: from, Text: text, Attachments: atts})
}

// File is an attachment whose bytes are data, fetched from memory; fetches counts its downloads.
func File(kind bridge.MediaKind, name, mimeType string, data []byte, fetches *int) bridge.Attachment {
	var mu sync.Mutex
	return bridge.Attachment{
		Kind: kind, Name: name, MIME: mimeType, Size: int64(len(data)),
		Fetch: func(ctx context.Context, limit int64) ([]byte, error) {
			if fetches != nil {
				mu.Lock()
				*fetches++
				mu.Unlock()
			}
			if int64(len(data)) > limit {
				return nil, fmt.Errorf("%w: %d bytes", bridge.ErrTooBig, len(data))
			}
			return slices.Clone(data), nil
		},
	}
}
