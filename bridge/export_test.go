package bridge

// StripInPlace is stripInPlace, for the fuzz test in bridge_test.
var StripInPlace = stripInPlace
