<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN" sourcelanguage="en">
<context>
    <name>Batch</name>
    <message>
        <source>Port</source>
        <translation>端口</translation>
    </message>
    <message>
        <source>Device id</source>
        <translation>设备 ID</translation>
    </message>
    <message>
        <source>Phase</source>
        <translation>阶段</translation>
    </message>
    <message>
        <source>Progress</source>
        <translation>进度</translation>
    </message>
    <message>
        <source>Result</source>
        <translation>结果</translation>
    </message>
</context>
<context>
    <name>BatchView</name>
    <message>
        <source>Serial ports (tick to include):</source>
        <translation>串口（勾选以加入）：</translation>
    </message>
    <message>
        <source>Emulated boards:</source>
        <translation>模拟板数量：</translation>
    </message>
    <message>
        <source>Loop: wait for the next board on each port</source>
        <translation>循环：每个端口等待下一块板</translation>
    </message>
    <message>
        <source>Flash every board that appears</source>
        <translation>烧录每块新接入的板</translation>
    </message>
    <message>
        <source>Flash all</source>
        <translation>全部烧录</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Save CSV…</source>
        <translation>保存 CSV…</translation>
    </message>
    <message>
        <source>Tick the ports to flash</source>
        <translation>勾选要烧录的端口</translation>
    </message>
    <message>
        <source>Open a firmware file first (in the Firmware panel).</source>
        <translation>请先打开固件文件（在“固件”面板）。</translation>
    </message>
    <message>
        <source>Tick at least one port, or add emulated boards.</source>
        <translation>请至少勾选一个端口，或添加模拟板。</translation>
    </message>
    <message>
        <source>emulated</source>
        <translation>模拟</translation>
    </message>
    <message>
        <source>{port} (emulated)</source>
        <translation>{port}（模拟）</translation>
    </message>
    <message>
        <source>ok, {version} in {seconds:.1f} s</source>
        <translation>成功，{version}，用时 {seconds:.1f} 秒</translation>
    </message>
    <message>
        <source>running</source>
        <translation>运行中</translation>
    </message>
    <message>
        <source>idle</source>
        <translation>空闲</translation>
    </message>
    <message>
        <source>{ok} flashed, {failed} failed, {boards} boards on {ports} ports ({state})</source>
        <translation>成功 {ok}，失败 {failed}，共 {boards} 块板，{ports} 个端口（{state}）</translation>
    </message>
    <message>
        <source>Save report</source>
        <translation>保存报告</translation>
    </message>
</context>
<context>
    <name>FlashLayoutBar</name>
    <message>
        <source>no device</source>
        <translation>无设备</translation>
    </message>
    <message>
        <source>bootloader</source>
        <translation>引导程序</translation>
    </message>
    <message>
        <source>primary slot</source>
        <translation>主槽</translation>
    </message>
    <message>
        <source>secondary slot</source>
        <translation>副槽</translation>
    </message>
    <message>
        <source>scratch / free</source>
        <translation>暂存 / 空闲</translation>
    </message>
</context>
<context>
    <name>IapTerminal</name>
    <message>
        <source>Keys to send (e.g. 1 for Download, 3 to run the application)</source>
        <translation>要发送的按键（如 1 下载，3 运行应用程序）</translation>
    </message>
    <message>
        <source>Send keys</source>
        <translation>发送按键</translation>
    </message>
    <message>
        <source>Send file (YMODEM)…</source>
        <translation>发送文件（YMODEM）…</translation>
    </message>
    <message>
        <source>Connect a classic IAP device to use its menu here.</source>
        <translation>连接经典 IAP 设备后可在此使用其菜单。</translation>
    </message>
    <message>
        <source>Connected to {url}</source>
        <translation>已连接到 {url}</translation>
    </message>
    <message>
        <source>Terminal stopped: {text}</source>
        <translation>终端已停止：{text}</translation>
    </message>
    <message>
        <source>Send file (YMODEM)</source>
        <translation>发送文件（YMODEM）</translation>
    </message>
    <message>
        <source>Cannot read {name}: {why}</source>
        <translation>无法读取 {name}：{why}</translation>
    </message>
    <message>
        <source>Sending {name} with YMODEM…</source>
        <translation>正在用 YMODEM 发送 {name}…</translation>
    </message>
    <message>
        <source>Sent {size} bytes with YMODEM at {time}.</source>
        <translation>已用 YMODEM 发送 {size} 字节（{time}）。</translation>
    </message>
    <message>
        <source>YMODEM send failed: {text}</source>
        <translation>YMODEM 发送失败：{text}</translation>
    </message>
</context>
<context>
    <name>LogConsole</name>
    <message>
        <source>Errors</source>
        <translation>错误</translation>
    </message>
    <message>
        <source>Warnings</source>
        <translation>警告</translation>
    </message>
    <message>
        <source>Info</source>
        <translation>信息</translation>
    </message>
    <message>
        <source>Debug</source>
        <translation>调试</translation>
    </message>
    <message>
        <source>Level:</source>
        <translation>级别：</translation>
    </message>
    <message>
        <source>Filter log text…</source>
        <translation>过滤日志文本…</translation>
    </message>
    <message>
        <source>Pause scrolling</source>
        <translation>暂停滚动</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>清空</translation>
    </message>
    <message>
        <source>Save…</source>
        <translation>保存…</translation>
    </message>
    <message>
        <source>{n} lines</source>
        <translation>{n} 行</translation>
    </message>
    <message>
        <source>Save log</source>
        <translation>保存日志</translation>
    </message>
    <message>
        <source>Log files (*.log *.txt)</source>
        <translation>日志文件 (*.log *.txt)</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>stm32ota updater</source>
        <translation>stm32ota 升级工具</translation>
    </message>
    <message>
        <source>Connection</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>Port:</source>
        <translation>端口：</translation>
    </message>
    <message>
        <source>or URL:</source>
        <translation>或 URL：</translation>
    </message>
    <message>
        <source>socket://host:port, rfc2217://…</source>
        <translation>socket://主机:端口, rfc2217://…</translation>
    </message>
    <message>
        <source>Baud:</source>
        <translation>波特率：</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Type:</source>
        <translation>类型：</translation>
    </message>
    <message>
        <source>Chip:</source>
        <translation>芯片：</translation>
    </message>
    <message>
        <source>Unique id:</source>
        <translation>唯一 ID：</translation>
    </message>
    <message>
        <source>Bootloader:</source>
        <translation>引导程序：</translation>
    </message>
    <message>
        <source>Firmware</source>
        <translation>固件</translation>
    </message>
    <message>
        <source>Open…</source>
        <translation>打开…</translation>
    </message>
    <message>
        <source>Recent</source>
        <translation>最近</translation>
    </message>
    <message>
        <source>File:</source>
        <translation>文件：</translation>
    </message>
    <message>
        <source>Contents:</source>
        <translation>内容：</translation>
    </message>
    <message>
        <source>SHA-256:</source>
        <translation>SHA-256：</translation>
    </message>
    <message>
        <source>Check:</source>
        <translation>检查：</translation>
    </message>
    <message>
        <source>Allow downgrade</source>
        <translation>允许降级</translation>
    </message>
    <message>
        <source>Reinstall same version</source>
        <translation>重装相同版本</translation>
    </message>
    <message>
        <source>Activate and reboot</source>
        <translation>激活并重启</translation>
    </message>
    <message>
        <source>Confirm</source>
        <translation>确认</translation>
    </message>
    <message>
        <source>Roll back</source>
        <translation>回滚</translation>
    </message>
    <message>
        <source>Reset</source>
        <translation>复位</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Device log</source>
        <translation>设备日志</translation>
    </message>
    <message>
        <source>IAP terminal</source>
        <translation>IAP 终端</translation>
    </message>
    <message>
        <source>Batch</source>
        <translation>批量</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>&amp;Open firmware…</source>
        <translation>打开固件(&amp;O)…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;Language</source>
        <translation>语言(&amp;L)</translation>
    </message>
    <message>
        <source>Emulated STM32 (built in)</source>
        <translation>模拟 STM32（内置）</translation>
    </message>
    <message>
        <source>wait for the current operation to finish, or cancel it</source>
        <translation>请等待当前操作完成，或取消它</translation>
    </message>
    <message>
        <source>Cancelled ({done:.0f} %). Press Resume to continue where it stopped.</source>
        <translation>已取消（{done:.0f} %）。按“继续烧录”从中断处继续。</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <source>Error: {text}</source>
        <translation>错误：{text}</translation>
    </message>
    <message>
        <source>{phase}: {done} of {total}, {rate}, {eta} left</source>
        <translation>{phase}：{done} / {total}，{rate}，剩余 {eta}</translation>
    </message>
    <message>
        <source>Connected to {url}</source>
        <translation>已连接到 {url}</translation>
    </message>
    <message>
        <source>Disconnected</source>
        <translation>已断开</translation>
    </message>
    <message>
        <source>Disconnect</source>
        <translation>断开</translation>
    </message>
    <message>
        <source>Connect</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>classic AN4657 IAP bootloader (YMODEM)</source>
        <translation>经典 AN4657 IAP 引导程序（YMODEM）</translation>
    </message>
    <message>
        <source>not reported by an IAP menu</source>
        <translation>IAP 菜单不提供</translation>
    </message>
    <message>
        <source>stm32ota bootloader, protocol {major}.{minor}</source>
        <translation>stm32ota 引导程序，协议 {major}.{minor}</translation>
    </message>
    <message>
        <source>0x{chip:03X}, board {board}, {flash} flash</source>
        <translation>0x{chip:03X}，板型 {board}，闪存 {flash}</translation>
    </message>
    <message>
        <source>Open firmware</source>
        <translation>打开固件</translation>
    </message>
    <message>
        <source>Firmware ({patterns});;All files (*)</source>
        <translation>固件 ({patterns});;所有文件 (*)</translation>
    </message>
    <message>
        <source>drop a .bin, .hex, .srec or .elf here, or Open…</source>
        <translation>将 .bin、.hex、.srec 或 .elf 拖到此处，或点击“打开…”</translation>
    </message>
    <message>
        <source>unreadable</source>
        <translation>无法读取</translation>
    </message>
    <message>
        <source>, chip 0x{chip:03X} board {board}</source>
        <translation>，芯片 0x{chip:03X} 板型 {board}</translation>
    </message>
    <message>
        <source>, no chip tag</source>
        <translation>，无芯片标签</translation>
    </message>
    <message>
        <source>none</source>
        <translation>无</translation>
    </message>
    <message>
        <source>signed image {version} ({fmt}, {size}), security counter {counter}, {sig} signature by key {key}{tag}</source>
        <translation>签名镜像 {version}（{fmt}，{size}），安全计数器 {counter}，{sig} 签名，密钥 {key}{tag}</translation>
    </message>
    <message>
        <source>no</source>
        <translation>无</translation>
    </message>
    <message>
        <source>raw application ({fmt}, {size}{where}), not signed</source>
        <translation>原始应用程序（{fmt}，{size}{where}），未签名</translation>
    </message>
    <message>
        <source>connect a device to check the file against it</source>
        <translation>连接设备后将针对该设备检查此文件</translation>
    </message>
    <message>
        <source>The device already runs this version; tick “Reinstall same version” to flash it again.</source>
        <translation>设备已在运行此版本；如需再次烧录，请勾选“重装相同版本”。</translation>
    </message>
    <message>
        <source>Ready to flash: {reason}</source>
        <translation>可以烧录：{reason}</translation>
    </message>
    <message>
        <source>Refused ({slug}): {reason}</source>
        <translation>已拒绝（{slug}）：{reason}</translation>
    </message>
    <message>
        <source>Fix: {hint}</source>
        <translation>解决方法：{hint}</translation>
    </message>
    <message>
        <source>an operation is running</source>
        <translation>有操作正在进行</translation>
    </message>
    <message>
        <source>connect a device first</source>
        <translation>请先连接设备</translation>
    </message>
    <message>
        <source>open a firmware file first</source>
        <translation>请先打开固件文件</translation>
    </message>
    <message>
        <source>the file was not checked</source>
        <translation>文件尚未检查</translation>
    </message>
    <message>
        <source>Resume flash</source>
        <translation>继续烧录</translation>
    </message>
    <message>
        <source>Flash</source>
        <translation>烧录</translation>
    </message>
    <message>
        <source>cannot flash: {reason}</source>
        <translation>无法烧录：{reason}</translation>
    </message>
    <message>
        <source>, resumed at {offset}</source>
        <translation>，从 {offset} 处继续</translation>
    </message>
    <message>
        <source>Done: {size} in {seconds:.1f} s at {baud} baud{resumed}.</source>
        <translation>完成：{size}，用时 {seconds:.1f} 秒，波特率 {baud}{resumed}。</translation>
    </message>
    <message>
        <source>Rebooted into the new image: confirm it when it works.</source>
        <translation>已重启进入新镜像：确认其正常后请点击“确认”。</translation>
    </message>
    <message>
        <source>The running image is confirmed.</source>
        <translation>当前运行的镜像已确认。</translation>
    </message>
    <message>
        <source>Rolled back to the previous image.</source>
        <translation>已回滚到上一个镜像。</translation>
    </message>
    <message>
        <source>The device restarted.</source>
        <translation>设备已重启。</translation>
    </message>
</context>
<context>
    <name>Phase</name>
    <message>
        <source>connect</source>
        <translation>连接</translation>
    </message>
    <message>
        <source>probe</source>
        <translation>探测</translation>
    </message>
    <message>
        <source>read back</source>
        <translation>回读</translation>
    </message>
    <message>
        <source>device work</source>
        <translation>设备操作</translation>
    </message>
    <message>
        <source>read device</source>
        <translation>读取设备</translation>
    </message>
    <message>
        <source>check image</source>
        <translation>检查镜像</translation>
    </message>
    <message>
        <source>erase</source>
        <translation>擦除</translation>
    </message>
    <message>
        <source>transfer</source>
        <translation>传输</translation>
    </message>
    <message>
        <source>verify</source>
        <translation>校验</translation>
    </message>
    <message>
        <source>activate</source>
        <translation>激活</translation>
    </message>
    <message>
        <source>baud switch</source>
        <translation>切换波特率</translation>
    </message>
    <message>
        <source>reboot</source>
        <translation>重启</translation>
    </message>
    <message>
        <source>confirm</source>
        <translation>确认</translation>
    </message>
    <message>
        <source>done</source>
        <translation>完成</translation>
    </message>
    <message>
        <source>cancelled</source>
        <translation>已取消</translation>
    </message>
    <message>
        <source>error</source>
        <translation>错误</translation>
    </message>
    <message>
        <source>waiting</source>
        <translation>等待中</translation>
    </message>
    <message>
        <source>roll back</source>
        <translation>回滚</translation>
    </message>
    <message>
        <source>boot</source>
        <translation>启动</translation>
    </message>
</context>
<context>
    <name>SlotState</name>
    <message>
        <source>empty</source>
        <translation>空</translation>
    </message>
    <message>
        <source>inactive</source>
        <translation>未激活</translation>
    </message>
    <message>
        <source>pending test</source>
        <translation>待测试</translation>
    </message>
    <message>
        <source>pending permanent</source>
        <translation>待永久安装</translation>
    </message>
    <message>
        <source>active (test)</source>
        <translation>运行中（测试）</translation>
    </message>
    <message>
        <source>confirmed</source>
        <translation>已确认</translation>
    </message>
</context>
<context>
    <name>SlotTable</name>
    <message>
        <source>Slot</source>
        <translation>槽位</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Version</source>
        <translation>版本</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>大小</translation>
    </message>
    <message>
        <source>Security counter</source>
        <translation>安全计数器</translation>
    </message>
    <message>
        <source>Digest</source>
        <translation>摘要</translation>
    </message>
    <message>
        <source>primary</source>
        <translation>主槽</translation>
    </message>
    <message>
        <source>secondary</source>
        <translation>副槽</translation>
    </message>
</context>
</TS>
