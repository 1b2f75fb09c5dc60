// Package lightning holds kumo's payment backends: the in-process development backend here, and lnd
// in package lightning/lnd. Both implement bridge.Payments.
package lightning

import (
	"fmt"
	"strings"

	"github.com/skip2/go-qrcode"
)

// QRCode renders a payment URI as a PNG. The URI is upper-cased first: BOLT11 is case-insensitive and
// QR codes hold upper-case text in the denser alphanumeric mode, so the code is smaller and scans
// more easily.
func QRCode(uri string) ([]byte, error) {
	png, err := qrcode.Encode(strings.ToUpper(uri), qrcode.Medium, 384)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	return png, nil
}
