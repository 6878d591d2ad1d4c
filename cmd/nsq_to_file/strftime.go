package main

import (
	"strconv"
	"time"
)

// strftime formats t with the subset of strftime(3) that NSQ's
// --datetime-format understands:
//
//	%Y year (2006)   %y year (06)     %m month (01)    %d day (02)
//	%H hour (15)     %I hour (03)     %M minute (04)   %S second (05)
//	%p AM/PM         %b Jan           %B January       %a Mon
//	%A Monday        %Z zone (MST)    %z zone (-0700)  %% a percent sign
//
// Any other character, including a '%' before an unknown letter, is copied
// as is.
func strftime(format string, t time.Time) string {
	b := make([]byte, 0, len(format)+16)
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			b = append(b, c)
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			b = pad(b, t.Year(), 4)
		case 'y':
			b = pad(b, t.Year()%100, 2)
		case 'm':
			b = pad(b, int(t.Month()), 2)
		case 'd':
			b = pad(b, t.Day(), 2)
		case 'H':
			b = pad(b, t.Hour(), 2)
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b = pad(b, h, 2)
		case 'M':
			b = pad(b, t.Minute(), 2)
		case 'S':
			b = pad(b, t.Second(), 2)
		case 'p':
			b = t.AppendFormat(b, "PM")
		case 'b':
			b = t.AppendFormat(b, "Jan")
		case 'B':
			b = t.AppendFormat(b, "January")
		case 'a':
			b = t.AppendFormat(b, "Mon")
		case 'A':
			b = t.AppendFormat(b, "Monday")
		case 'Z':
			b = t.AppendFormat(b, "MST")
		case 'z':
			b = t.AppendFormat(b, "-0700")
		case '%':
			b = append(b, '%')
		default:
			b = append(b, '%', format[i])
		}
	}
	return string(b)
}

// pad appends n in decimal, zero-padded to width digits.
func pad(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}
