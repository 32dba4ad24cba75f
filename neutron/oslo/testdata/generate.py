# Run with Debian's python3 and python3-oslo.messaging installed: cd testdata && /usr/bin/python3 generate.py
# Builds the test bodies with oslo.messaging's own serializers (Debian's 14.0.3), from the
# messages recorded in reference/neutron-rpc.md §2.4, §2.5, §4.1 and §6.6.
import json, sys
from oslo_messaging._drivers import common
ctx = {"is_admin": True, "request_id": "req-5b3f0f2c-1c3e-4bb5-9f2e-0d8b0c6f1a11", "timestamp": "2026-11-21 19:10:53.656830",
 "user_id": None, "project_id": None, "tenant_id": None, "roles": [], "user_identity": "- - - - -", "is_admin_project": True,
 "read_only": False, "show_deleted": False, "auth_token": None, "global_request_id": None, "user": None, "project": None,
 "domain": None, "user_domain": None, "project_domain": None, "system_scope": None, "resource_uuid": None,
 "tenant_name": None, "project_name": None, "user_name": None}
def flat(msg, c):
    msg.update(("_context_%s" % k, v) for k, v in c.items())
    return msg
def write(name, msg):
    with open(name, "w") as f:
        f.write(json.dumps(common.serialize_msg(msg)))
write("call_tunnel_sync.json", flat({"method": "tunnel_sync", "args": {"tunnel_ip": "10.255.77.11", "tunnel_type": "vxlan", "host": "compute-1"},
  "version": "1.4", "_msg_id": "627b3d1af7db4ca2a3439e25c24782f4", "_reply_q": "reply_acaf93f853314620bfadaec4680de7c0",
  "_timeout": None, "_unique_id": "6fbc97dbf64e4e789806ebfd32183e2f"}, ctx))
write("cast_add_fdb_entries.json", flat({"method": "add_fdb_entries", "version": "1.0", "_unique_id": "0c2f6a3e9d1b4d3e8e4f5a6b7c8d9e0f",
  "args": {"fdb_entries": {"1c700c4c-9aaf-4489-b6eb-a645f40a346e": {"network_type": "vxlan", "segment_id": 1199,
   "ports": {"10.255.77.11": [["00:00:00:00:00:00", "0.0.0.0"], ["fa:16:3e:f0:25:f3", "10.10.0.153"]]}}}}}, ctx))
write("reply_tunnel_sync.json", {"result": {"tunnels": [{"host": "compute-1", "ip_address": "10.255.77.11", "udp_port": 4789}]},
  "failure": None, "ending": True, "_msg_id": "627b3d1af7db4ca2a3439e25c24782f4", "_unique_id": "f400098adc854c2096f5d72d1900b2c8"})
class NoSuchMethod(Exception): pass
NoSuchMethod.__module__ = "oslo_messaging.rpc.dispatcher"
class UnsupportedVersion(Exception): pass
UnsupportedVersion.__module__ = "oslo_messaging.rpc.dispatcher"
class AddrFormatError(Exception): pass
AddrFormatError.__module__ = "netaddr.core"
def failure(exc):
    try:
        raise exc
    except Exception:
        return common.serialize_remote_exception(sys.exc_info())
write("reply_no_such_method.json", {"result": None, "ending": True, "_msg_id": "4173d0569b7646dea65023fb262f66e3", "_unique_id": "9a1b2c3d4e5f40718293a4b5c6d7e8f9",
  "failure": failure(NoSuchMethod("Endpoint does not support RPC method no_such_method"))})
write("reply_unsupported_version.json", {"result": None, "ending": True, "_msg_id": "5173d0569b7646dea65023fb262f66e3", "_unique_id": "8a1b2c3d4e5f40718293a4b5c6d7e8f9",
  "failure": failure(UnsupportedVersion("Endpoint does not support RPC version 9.0. Attempted method: tunnel_sync"))})
write("reply_addr_format_error.json", {"result": None, "ending": True, "_msg_id": "6173d0569b7646dea65023fb262f66e3", "_unique_id": "7a1b2c3d4e5f40718293a4b5c6d7e8f9",
  "failure": failure(AddrFormatError("failed to detect a valid IP address from 'bogus'"))})
write("reply_heartbeat.json", {"result": None, "failure": None, "ending": False, "_msg_id": "627b3d1af7db4ca2a3439e25c24782f4", "_unique_id": "1a1b2c3d4e5f40718293a4b5c6d7e8f9"})
