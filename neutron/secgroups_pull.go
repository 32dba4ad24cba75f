package neutron

import (
	"context"

	"go.uber.org/zap"
)

// fetchSecurityGroups pulls what the snapshot lacks of the security groups of this host's
// ports, as Neutron's agent fills its cache on a miss: the Port objects of ports whose groups
// are unknown (their details came from the legacy call, or a resync), then the groups with
// their rules, then the members of their rules' remote groups and their address groups.
// Pushes that arrive meanwhile win over the pulls' older copies. A failed pull is retried
// after a back-off (1 s, doubling up to 30 s) and at the next resync.
func (s *Source) fetchSecurityGroups(ctx context.Context) {
	if !s.set.SecurityGroups {
		return
	}
	s.mu.Lock()
	ports := s.c.sg.portsToPull(s.c.ports)
	s.mu.Unlock()
	changed, failed := false, false
	if len(ports) > 0 {
		b, err := s.api.bulkPull(ctx, typePort, "1.7", map[string][]string{"id": ports})
		s.mu.Lock()
		if err != nil {
			s.c.sg.repullPorts = true
		} else {
			for i := range b.ports {
				s.c.sg.applyPort(pushUpdated, &b.ports[i])
			}
			for _, id := range ports {
				s.c.sg.portsPulled[id] = true
			}
			// The routers of router ports come with the same objects.
			for _, p := range b.ports {
				s.c.setDeviceID(p.ID, p.DeviceID)
			}
		}
		s.mu.Unlock()
		changed = s.pulled("Port", ports, err) || changed
		failed = failed || err != nil
	}

	s.mu.Lock()
	groups := s.c.sg.groupsToPull(s.c.ports)
	since := s.c.sg.seq
	s.mu.Unlock()
	if len(groups) > 0 {
		objects, err := s.api.bulkPull(ctx, typeSecurityGroup, "1.5", map[string][]string{"id": groups})
		var rules *pushBatch
		if err == nil {
			rules, err = s.api.bulkPull(ctx, typeSecurityGroupRule, "1.2", map[string][]string{"security_group_id": groups})
		}
		if err == nil {
			s.mu.Lock()
			s.c.sg.pulledRules(groups, since, objects.groups, rules.rules)
			s.mu.Unlock()
		}
		changed = s.pulled("SecurityGroup and SecurityGroupRule", groups, err) || changed
		failed = failed || err != nil
	}

	s.mu.Lock()
	members, addressGroups := s.c.sg.membersAndAddressGroupsToPull(s.c.ports)
	since = s.c.sg.seq
	s.mu.Unlock()
	if len(members) > 0 {
		b, err := s.api.bulkPull(ctx, typePort, "1.7", map[string][]string{"security_group_ids": members})
		if err == nil {
			s.mu.Lock()
			s.c.sg.pulledMembers(members, since, b.ports)
			s.mu.Unlock()
		}
		changed = s.pulled("Port (remote group members)", members, err) || changed
		failed = failed || err != nil
	}
	if len(addressGroups) > 0 {
		b, err := s.api.bulkPull(ctx, typeAddressGroup, "1.2", map[string][]string{"id": addressGroups})
		if err == nil {
			s.mu.Lock()
			for i := range b.addressGroups {
				s.c.sg.applyAddressGroup(pushUpdated, &b.addressGroups[i])
			}
			for _, id := range addressGroups {
				s.c.sg.addressGroupsPulled[id] = true
			}
			s.mu.Unlock()
		}
		changed = s.pulled("AddressGroup", addressGroups, err) || changed
		failed = failed || err != nil
	}
	if changed {
		s.markChanged()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !failed {
		s.sgRetryWait = 0
		return
	}
	s.sgRetryWait = min(max(2*s.sgRetryWait, minDetailsRetry), maxDetailsRetry)
	s.pokeAfter(ctx, s.sgRetryWait)
}

// pulled logs a pull; it reports whether it succeeded.
func (s *Source) pulled(what string, ids []string, err error) bool {
	if err != nil {
		s.log.Warn("bulk_pull failed; asked again", zap.String("objects", what), zap.Strings("ids", ids), zap.Error(err))
		return false
	}
	s.log.Debug("bulk_pull", zap.String("objects", what), zap.Strings("ids", ids))
	return true
}
