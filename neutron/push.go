package neutron

import (
	"encoding/json"
	"strings"

	"go.uber.org/zap"
)

// fromPush is a device's details from the server's pushes, with its network's MTU (pushed,
// or that of a port of the network already known), or nil when there is no push binding it
// here. forNew asks for details to program a new device: a router port whose network's
// MTU is unknown is then left to the details call (the MTU of its namespace interface).
// s.mu is held.
func (s *Source) fromPush(device string, forNew bool) *DeviceDetails {
	d := s.p.details(device)
	if d == nil {
		return nil
	}
	if d.MTU == 0 {
		if old := s.c.ports[device]; old != nil && old.NetworkID == d.NetworkID {
			d.MTU = old.MTU
		}
	}
	if d.MTU == 0 {
		for _, p := range s.c.ports {
			if p.NetworkID == d.NetworkID && p.MTU > 0 {
				d.MTU = p.MTU
				break
			}
		}
	}
	if forNew && d.MTU == 0 && strings.HasPrefix(d.DeviceOwner, "network:router") {
		return nil
	}
	return d
}

// takePushed programs the devices to ask details for that the pushes bind here, and returns
// the others (to be asked). The caller marks the change. s.mu is held.
func (s *Source) takePushed(devices []string) (ask []string) {
	var details []DeviceDetails
	for _, device := range devices {
		if d := s.fromPush(device, true); d != nil {
			details = append(details, *d)
		} else {
			ask = append(ask, device)
		}
	}
	if len(details) == 0 {
		return ask
	}
	known, _ := s.c.setDetails(details)
	for _, device := range known {
		s.c.setDeviceID(device, s.p.deviceIDs[device])
		delete(s.failed, device)
	}
	// The change is marked once the subnets of their fixed IPs are known (work).
	s.log.Info("device details from the server's pushes", zap.Strings("devices", known))
	return ask
}

// applyPush applies a push of Port and Network objects (reference §5). A port bound here
// that is plugged is programmed from it (details of a new device, or changes of a known
// one); a port deleted, or no longer bound here, is forgotten. s.mu is held.
func (s *Source) applyPush(method string, raw json.RawMessage) error {
	b, err := decodePush(method, raw)
	if err != nil {
		return err
	}
	event, ports, networks := b.event, b.ports, b.networks
	s.c.sg.applyPush(b)
	for i := range networks {
		n := &networks[i]
		mtu, ok := s.p.applyNetwork(event, n)
		if !ok || mtu == 0 {
			continue
		}
		for _, d := range s.c.ports {
			if d.NetworkID == n.ID {
				d.MTU = mtu
			}
		}
	}
	for i := range ports {
		p := &ports[i]
		change, ok := s.p.applyPort(s.set.Host, event, p)
		if !ok {
			s.log.Debug("port push ignored (older revision, or deleted)", zap.String("port", p.ID), zap.String("event", event))
			continue
		}
		_, known := s.c.ports[p.ID]
		switch {
		case change.deleted:
			if known || s.plugged[p.ID] {
				s.c.forget(p.ID, true)
			}
		case change.details == nil:
			if known {
				s.log.Info("port no longer bound to this host (push): kept dead", zap.String("port", p.ID))
				s.c.forget(p.ID, true)
			}
		case known:
			if d := s.fromPush(p.ID, false); d != nil {
				s.c.setDetails([]DeviceDetails{*d})
				s.c.setDeviceID(p.ID, s.p.deviceIDs[p.ID])
			}
		case s.plugged[p.ID]:
			// Plugged before the server bound it (or before its push): programmed now.
			delete(s.c.unknown, p.ID)
			delete(s.failed, p.ID)
			s.pending[p.ID] = true
		}
	}
	return nil
}
